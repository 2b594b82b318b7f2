// `--driver none`: Kubernetes on the machine kubeprov runs on. Never this machine: the "host" is a
// node container made with the docker driver's own plan and flags (systemd, containerd, the node
// fix-ups a kubelet needs in a container), and kubeprov runs inside it: this machine's `node`
// binary, the compiled tree, node_modules, templates and the bundle bind-mounted read-only. Inside:
// `up --driver none` to a Ready node whose pods resolve cluster names, `status` Running, a second
// `up` with 0 changed, stop/start of the kubelet and containers, `node add` refused, bad flags
// refused naming the flag, and `delete` leaving no Kubernetes state and no kube containers.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { removeNodeCgroups } from "../../provisioner/drivers/docker/cgroups.js";
import { kubeprovInside, provisionMachinesWithKubeprov } from "../helpers/machines-with-kubeprov.js";
import { dockerCleanup, KUBECTL, onNode, summaryOf, waitFor } from "../helpers/cluster-e2e.js";
import { newPodResolvesDns } from "../helpers/dns-probe.js";

/** The docker-driver cluster whose one node container plays the host. */
const HOST_CLUSTER = `kpt-nonehost${process.pid % 10000}`;
const HOST = `${HOST_CLUSTER}-control-plane`;
/** The cluster made inside it with --driver none. */
const NAME = "kpt-none";
const home = mkdtempSync(join(tmpdir(), "kpt-none-"));
const kubeconfig = join(home, "admin.conf");

/** kubeprov inside the host container, as root there, with its own state directory and kubeconfig. */
const inside = (args: string[], timeoutMs = 5 * 60_000) => kubeprovInside(HOST, args, {}, timeoutMs);

before(async () => {
  await dockerCleanup(HOST_CLUSTER);
  process.env.KUBEPROV_HOME = join(home, "outer");
  await provisionMachinesWithKubeprov(HOST_CLUSTER, 1, 1);
});

after(async () => {
  await dockerCleanup(HOST_CLUSTER);
  // The kubelet inside the host container put its pods' cgroups under this machine's
  // /sys/fs/cgroup/*/kubeprov/<the inner cluster's name>: gone with the container's processes, so removable now.
  removeNodeCgroups(NAME);
  rmSync(home, { recursive: true, force: true });
});

test("bad input: more than one node is refused naming the flag (exit 2), nothing written", async () => {
  const nodes = await inside(["up", "--driver", "none", "--name", NAME, "--nodes", "2"]);
  assert.equal(nodes.code, 2, nodes.stderr);
  assert.match(nodes.stderr, /--nodes 2: the none driver runs one node, this machine/);
  const cps = await inside(["up", "--driver", "none", "--name", NAME, "--control-planes", "3"]);
  assert.equal(cps.code, 2, cps.stderr);
  assert.match(cps.stderr, /--control-planes 3: the none driver runs one node/);
  const left = await onNode(HOST, "ls -A /root/kubeprov /etc/kubernetes 2>&1; true");
  assert.doesNotMatch(left.stdout, /driver\.json|cluster\.yaml|pki/, left.stdout);
});

test("a preflight failure stops up before anything on this machine changes (exit 1, the check named)", async () => {
  const state = "ls -d /etc/kubernetes /var/lib/kubelet /var/lib/etcd /usr/local/bin/kubelet 2>/dev/null; sha256sum /etc/containerd/config.toml; systemctl is-active containerd";
  const before = await onNode(HOST, state);
  // Something else holds the API server's port.
  const busy = await onNode(HOST, "systemd-run --unit kpt-busy-6443 socat TCP-LISTEN:6443,fork,reuseaddr /dev/null && sleep 0.5");
  assert.equal(busy.code, 0, busy.stderr);
  try {
    const up = await inside(["up", "--driver", "none", "--name", NAME]);
    assert.equal(up.code, 1, up.stdout + up.stderr);
    assert.match(up.stdout + up.stderr, /Port-6443/);
    assert.match(up.stdout + up.stderr, /port 6443 is in use by socat/);
    assert.equal((await onNode(HOST, state)).stdout, before.stdout, "this machine changed");
  } finally {
    await onNode(HOST, "systemctl stop kpt-busy-6443");
  }
});

test("up --driver none: this machine becomes a Ready node whose pods resolve cluster names; status Running; a second up changes nothing", async () => {
  const up = await inside(["up", "--driver", "none", "--name", NAME, "-o", "json"]);
  assert.equal(up.code, 0, `${up.stderr.slice(-4000)}\n${up.stdout.slice(-4000)}`);
  process.stderr.write(`# up --driver none: ${(up.ms / 1000).toFixed(1)} s\n`);
  // The warning comes before anything changes; the node is the machine's hostname.
  assert.match(up.stdout, /the none driver installs Kubernetes on this machine \(kpt-nonehost\d+-control-plane\) itself/);
  // The bundle is on this machine: binaries and images are copied and imported from it, not uploaded.
  assert.match(up.stdout, /copied [^"]*kubelet[^"]* from the bundle the host sees at \/root\/\.cache\/kubeprov\/bundle\//);
  assert.doesNotMatch(up.stdout, /MB uploaded|"detail":"uploaded /);
  const recorded = await onNode(HOST, `cat /root/kubeprov/clusters/${NAME}/driver.json; grep -E 'connection|cgroupDriver|name: ' /root/kubeprov/clusters/${NAME}/cluster.yaml`);
  assert.match(recorded.stdout, /"driver": "none"/);
  assert.match(recorded.stdout, /connection: local/);
  assert.match(recorded.stdout, /cgroupDriver: cgroupfs/, "this machine is a container: cgroupfs");

  const kc = await onNode(HOST, `cat /root/kubeprov/clusters/${NAME}/admin.conf`);
  assert.equal(kc.code, 0, kc.stderr);
  writeFileSync(kubeconfig, kc.stdout, { mode: 0o600 });
  const ready = await waitFor(async () => {
    const r = await execa(KUBECTL, ["--kubeconfig", kubeconfig, "get", "node", HOST, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"], { reject: false });
    return String(r.stdout) === "True";
  }, 90_000);
  assert.notEqual(ready, -1, "node not Ready within 90 s");
  // The node's address is the one of the interface of the container's default route (its Docker network).
  const ip = await execa("docker", ["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", HOST]);
  const internal = await execa(KUBECTL, ["--kubeconfig", kubeconfig, "get", "node", HOST, "-o", "jsonpath={.status.addresses[?(@.type=='InternalIP')].address}"]);
  assert.equal(String(internal.stdout), String(ip.stdout).trim());
  const dns = await newPodResolvesDns(KUBECTL, kubeconfig, "dns-probe", 120_000);
  assert.notEqual(dns, -1, "kubernetes.default did not resolve within 120 s");
  process.stderr.write(`# node Ready ${(ready / 1000).toFixed(1)} s after up; DNS probe ${(dns / 1000).toFixed(1)} s\n`);

  const status = await inside(["status", "--name", NAME]);
  assert.equal(status.code, 0, status.stderr + status.stdout);
  assert.match(status.stdout, new RegExp(`cluster ${NAME}: Running`));

  const again = await inside(["up", "--name", NAME, "-o", "json"]);
  assert.equal(again.code, 0, again.stderr.slice(-3000));
  const changed = again.stdout.split("\n").filter((l) => l.includes('"status":"changed"'));
  assert.equal(summaryOf(again.stdout)?.changed, 0, changed.join("\n"));
});

test("node add is refused (one machine), exit 2", async () => {
  const r = await inside(["node", "add", "--name", NAME]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /none driver: its one node is this machine/);
});

test("stop stops the kubelet and every container; start brings the cluster back", async () => {
  const stop = await inside(["stop", "--name", NAME]);
  assert.equal(stop.code, 0, stop.stderr);
  const down = await onNode(HOST, "systemctl is-active kubelet; crictl ps -q | wc -l");
  assert.deepEqual(down.stdout.trim().split("\n"), ["inactive", "0"], down.stdout + down.stderr);
  const st = await inside(["status", "--name", NAME]);
  assert.equal(st.code, 1, st.stdout);
  assert.match(st.stdout, new RegExp(`cluster ${NAME}: Stopped`));
  const start = await inside(["start", "--name", NAME]);
  assert.equal(start.code, 0, start.stderr);
  assert.match(start.stderr, /is back: API, 1 node\(s\) Ready, CoreDNS ready/);
  process.stderr.write(`# stop ${(stop.ms / 1000).toFixed(1)} s, start ${(start.ms / 1000).toFixed(1)} s\n`);
});

test("delete resets this machine: no Kubernetes state, no kube containers, no local files", async () => {
  const del = await inside(["delete", "--name", NAME]);
  assert.equal(del.code, 0, del.stderr + del.stdout);
  assert.match(del.stdout, new RegExp(`cluster ${NAME} deleted`));
  const left = await onNode(HOST, "for d in /etc/kubernetes /var/lib/kubelet /var/lib/etcd; do [ -e $d ] && echo \"$d: $(ls -A $d)\"; done; crictl ps -aq | wc -l; ctr -n k8s.io tasks ls -q | wc -l; ls -A /root/kubeprov/clusters");
  const lines = left.stdout.trim().split("\n");
  for (const l of lines.filter((x) => x.startsWith("/"))) assert.match(l, /^\S+: $/, `not empty: ${l}`);
  assert.deepEqual(lines.filter((x) => !x.startsWith("/")), ["0", "0"], left.stdout + left.stderr);
  assert.equal((await onNode(HOST, "systemctl is-active kubelet")).stdout.trim(), "inactive");
});
