// flannel's vxlan backend: `up --nodes 2 --flannel-backend vxlan` (1 control plane + 1 worker).
// Each node gets a flannel.1 vxlan device and routes the other node's pod CIDR through it; the pod
// bridge's MTU leaves room for the encapsulation, so a 1 MiB answer crosses between nodes intact;
// pods reach each other both ways by pod IP and see the sender's pod IP. A running cluster's
// backend is not switched in place: preflight refuses host-gw on it before anything changes.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { buildFixtureImage, dockerCleanup, kubectl, kubeprov, onNode, removeTestCluster, summaryOf, waitFor } from "../helpers/cluster-e2e.js";
import { echoPods } from "../helpers/echo-pods.js";

const NAME = "kpt-vxlan";
const IMAGE = `kpt-echo:${NAME}`;
const CP = `${NAME}-control-plane`;
const W1 = `${NAME}-worker`;
const home = mkdtempSync(join(tmpdir(), "kpt-vxlan-"));
const work = mkdtempSync(join(tmpdir(), "kpt-vxlan-img-"));
const kubeconfig = join(home, "admin.conf");
const { apply, pod, podIP, getFrom } = echoPods(kubeconfig, IMAGE);

before(async () => {
  await dockerCleanup(NAME);
  await buildFixtureImage("echo", IMAGE, NAME, work);
  const up = await kubeprov(home, ["up", "--name", NAME, "--nodes", "2", "--flannel-backend", "vxlan", "--no-kubeconfig", "-o", "json"]);
  assert.equal(up.code, 0, up.stdout.split("\n").filter((l) => l.includes('"failed"')).join("\n") + up.stderr.slice(-3000));
  process.stderr.write(`# up --nodes 2 --flannel-backend vxlan: ${(up.ms / 1000).toFixed(1)} s\n`);
  writeFileSync(kubeconfig, (await kubeprov(home, ["kubeconfig", "--name", NAME])).stdout, { mode: 0o600 });
  const load = await kubeprov(home, ["image", "load", "--name", NAME, IMAGE]);
  assert.equal(load.code, 0, load.stderr);
});

after(async () => {
  await removeTestCluster(home, NAME);
  await execa("docker", ["rmi", "-f", IMAGE], { reject: false });
  rmSync(work, { recursive: true, force: true });
});

test("each node has a flannel.1 vxlan device and routes the other node's pod CIDR through it; the pod bridge's MTU leaves room", async () => {
  const cidrs = await kubectl(kubeconfig, ["get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name} {.spec.podCIDR}{\"\\n\"}{end}"]);
  const byNode = Object.fromEntries(cidrs.stdout.trim().split("\n").map((l) => l.split(" ")));
  for (const [node, other] of [[CP, W1], [W1, CP]] as const) {
    assert.ok(byNode[other], `no pod CIDR for ${other}: ${cidrs.stdout}`);
    const routed = await waitFor(async () => (await onNode(node, "ip -4 route")).stdout.includes(`${byNode[other]} via ${byNode[other]!.split("/")[0]} dev flannel.1 onlink`), 60_000);
    assert.notEqual(routed, -1, `no vxlan route on ${node} for ${other}'s ${byNode[other]}: ${(await onNode(node, "ip -4 route")).stdout}`);
    const link = await onNode(node, "ip -d link show flannel.1");
    assert.match(link.stdout, /vxlan id 1 /, link.stdout);
    const mtus = await onNode(node, "cat /sys/class/net/eth0/mtu /sys/class/net/flannel.1/mtu; cat /etc/cni/net.d/10-kubeprov-bridge.conflist");
    const [eth0, flannel] = mtus.stdout.split("\n").map(Number);
    assert.equal(flannel, eth0! - 50, mtus.stdout);
    assert.equal(JSON.parse(mtus.stdout.split("\n").slice(2).join("\n")).plugins[0].mtu, eth0! - 50, mtus.stdout);
  }
});

test("pods on the two nodes reach each other by pod IP both ways through vxlan, see the sender's pod IP, and a 1 MiB answer arrives whole", async () => {
  await apply([pod("srv-cp", CP, ["serve"]), pod("srv-w1", W1, ["serve"])]);
  const ipCp = await podIP("srv-cp");
  const ipW1 = await podIP("srv-w1");
  const a = await getFrom(W1, "get-w1-to-cp", `http://${ipCp}:8080/`);
  const fromA = /^from (\S+):\d+ to srv-cp$/m.exec(a);
  assert.ok(fromA, `worker -> control plane: ${a}`);
  assert.equal(fromA![1], (await kubectl(kubeconfig, ["get", "pod", "get-w1-to-cp", "-o", "jsonpath={.status.podIP}"])).stdout.trim(), "the receiver saw another address than the sender's pod IP");
  const b = await getFrom(CP, "get-cp-to-w1", `http://${ipW1}:8080/`);
  assert.match(b, /^from \S+:\d+ to srv-w1$/m, `control plane -> worker: ${b}`);
  const big = await getFrom(CP, "get-big", `http://${ipW1}:8080/big`);
  // 1 MiB, a newline, then the "from … to srv-w1" line and its newline.
  const whole = /^bytes (\d+)\n(from \S+:\d+ to srv-w1)$/m.exec(big);
  assert.ok(whole, `1 MiB across vxlan: ${big}`);
  assert.equal(Number(whole[1]), 1024 * 1024 + 1 + whole[2]!.length + 1, big);
});

test("the backend of a running cluster is not switched in place: host-gw is refused by preflight, nothing changes", async () => {
  const recorded = join(home, "clusters", NAME, "cluster.yaml");
  const hostGw = join(home, "host-gw.yaml");
  writeFileSync(hostGw, readFileSync(recorded, "utf8").replace("flannelBackend: vxlan", "flannelBackend: host-gw"));
  const before = (await onNode(W1, "ip -d link show flannel.1; ip -4 route; md5sum /etc/cni/net.d/*")).stdout;
  const r = await kubeprov(home, ["apply", "-f", hostGw, "-o", "json"]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stdout, /"id":"NetworkUnchanged","status":"fail","message":"spec\.networking\.flannelBackend: the cluster runs with \\"vxlan\\", the file says \\"host-gw\\"/);
  assert.equal(summaryOf(r.stdout)?.changed, 0);
  const cm = await kubectl(kubeconfig, ["-n", "kube-system", "get", "configmap", "kube-flannel-cfg", "-o", "jsonpath={.data.net-conf\\.json}"]);
  assert.match(cm.stdout, /"Type": ?"vxlan"/, cm.stdout);
  assert.equal((await onNode(W1, "ip -d link show flannel.1; ip -4 route; md5sum /etc/cni/net.d/*")).stdout, before);
});
