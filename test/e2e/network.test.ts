// A multi-node data plane: `up --nodes 3` (1 control plane + 2 workers) with flannel (host-gw),
// an image of our own loaded with `image load`, and what a user expects of such a cluster: pods on
// different nodes reach each other by pod IP in both directions and see the sender's pod IP (not
// masqueraded), a Service whose only endpoint is on another node answers by its DNS name, logs and
// exec work on a worker's pod, a NodePort answers on every node's address, a subset of the
// Kubernetes conformance suite passes, and a worker added later with `up --nodes 4` reaches the
// others with nothing changed on them.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { buildFixtureImage, dockerCleanup, KUBECTL, kubectl, kubeprov, onNode, removeTestCluster, summaryOf, waitFor } from "../helpers/cluster-e2e.js";
import { echoPods } from "../helpers/echo-pods.js";
import { cgroupHierarchies } from "../../provisioner/drivers/docker/cgroups.js";
import { KUBELET_CGROUP_PARENT } from "../../provisioner/constants.js";
import { blockEgress, conformanceDir, defaultRouteInterface, egressRules, parseJunit, runSuite, summarize, unblockEgress } from "../../scripts/conformance.js";

// The conformance specs run here, by the start of their names (the suite appends tags such as
// [Conformance]); each matched literally.
const CI_SUBSET = [
  "[sig-network] Services should serve a basic endpoint from pods",
  "[sig-network] Services should be able to create a functioning NodePort service",
  "[sig-network] DNS should provide DNS for the cluster",
  "[sig-network] DNS should provide DNS for services",
  "[sig-network] Networking Granular Checks: Pods should function for intra-pod communication: http",
  "[sig-network] HostPort validates that there is no conflict between pods with same hostPort but different hostIP and protocol",
  "[sig-node] ConfigMap should be consumable via the environment",
  "[sig-node] Container Lifecycle Hook when create a pod with lifecycle hook should execute poststart http hook properly",
  "[sig-node] Pods should get a host IP",
  "[sig-apps] Deployment RollingUpdateDeployment should delete old pods and create new ones",
  "[sig-apps] ReplicaSet should serve a basic image on each replica with a public image",
  "[sig-api-machinery] AdmissionWebhook [Privileged:ClusterAdmin] should mutate configmap",
  "[sig-api-machinery] Watchers should be able to restart watching from the last resource version observed by the previous watch",
  "[sig-api-machinery] ResourceQuota should create a ResourceQuota and capture the life of a pod.",
];
const CI_SUBSET_FOCUS = CI_SUBSET.map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|");
// The test images those specs run (the rest of images.txt is not loaded here).
const CI_SUBSET_IMAGES = ["agnhost", "glibc-dns-testing", "busybox"];

const NAME = "kpt-net";
const IMAGE = `kpt-echo:${NAME}`;
const W1 = `${NAME}-worker`;
const W2 = `${NAME}-worker2`;
const W3 = `${NAME}-worker3`;
const home = mkdtempSync(join(tmpdir(), "kpt-net-"));
const work = mkdtempSync(join(tmpdir(), "kpt-net-img-"));
const kubeconfig = join(home, "admin.conf");

const { apply, pod: echoPod, podIP, getFrom } = echoPods(kubeconfig, IMAGE);

let ips: Record<string, string> = {};

before(async () => {
  await dockerCleanup(NAME);
  await buildFixtureImage("echo", IMAGE, NAME, work);
  const up = await kubeprov(home, ["up", "--name", NAME, "--nodes", "3", "--no-kubeconfig", "-o", "json"]);
  assert.equal(up.code, 0, up.stdout.split("\n").filter((l) => l.includes('"failed"')).join("\n") + up.stderr.slice(-3000));
  process.stderr.write(`# up --nodes 3 (flannel): ${(up.ms / 1000).toFixed(1)} s\n`);
  const kc = await kubeprov(home, ["kubeconfig", "--name", NAME]);
  writeFileSync(kubeconfig, kc.stdout, { mode: 0o600 });
  const nodes = JSON.parse((await kubeprov(home, ["node", "list", "--name", NAME, "-o", "json"])).stdout) as Array<{ name: string; address: string }>;
  ips = Object.fromEntries(nodes.map((n) => [n.name, n.address]));
});

after(async () => {
  await removeTestCluster(home, NAME);
  await execa("docker", ["rmi", "-f", IMAGE], { reject: false });
  rmSync(work, { recursive: true, force: true });
});

test("image load puts our image into every node once; a missing image or a broken archive is a clear error", async () => {
  const r = await kubeprov(home, ["image", "load", "--name", NAME, IMAGE]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((r.stderr.match(/: imported kpt-echo:kpt-net/g) ?? []).length, 3, r.stderr);
  const again = await kubeprov(home, ["image", "load", "--name", NAME, IMAGE]);
  assert.equal(again.code, 0, again.stderr);
  assert.equal((again.stderr.match(/: already has kpt-echo:kpt-net/g) ?? []).length, 3, again.stderr);
  const missing = await kubeprov(home, ["image", "load", "--name", NAME, "kpt-no-such-image:1"]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no image kpt-no-such-image:1 in the local Docker engine/);
  const broken = join(work, "broken.tar");
  writeFileSync(broken, "not an archive");
  const bad = await kubeprov(home, ["image", "load", "--name", NAME, broken]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /is not an image archive/);
});

test("every node Ready; flannel routes each other node's pod CIDR through its address", async () => {
  const ms = await waitFor(async () => {
    const n = await kubectl(kubeconfig, ["get", "nodes", "-o", "jsonpath={range .items[*]}{.status.conditions[?(@.type=='Ready')].status}{\"\\n\"}{end}"]);
    return n.stdout.split("\n").filter((l) => l === "True").length === 3;
  }, 120_000, 2000);
  assert.notEqual(ms, -1, "not all 3 nodes Ready");
  const cidrs = await kubectl(kubeconfig, ["get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name} {.spec.podCIDR}{\"\\n\"}{end}"]);
  const byNode = Object.fromEntries(cidrs.stdout.trim().split("\n").map((l) => l.split(" ")));
  const routed = await waitFor(async () => {
    const routes = (await onNode(W1, "ip -4 route")).stdout;
    return byNode[W2] !== undefined && routes.includes(`${byNode[W2]} via ${ips[W2]}`) && routes.includes(`${byNode[`${NAME}-control-plane`]} via ${ips[`${NAME}-control-plane`]}`);
  }, 60_000);
  assert.notEqual(routed, -1, `flannel routes missing on ${W1}: ${(await onNode(W1, "ip -4 route")).stdout}`);
});

test("pods on different nodes reach each other by pod IP both ways, and see the sender's pod IP", async () => {
  await apply([echoPod("srv1", W1, ["serve"], { app: "srv1" }), echoPod("srv2", W2, ["serve"], { app: "srv2" })]);
  const ip1 = await podIP("srv1");
  const ip2 = await podIP("srv2");
  const a = await getFrom(W1, "get-1-to-2", `http://${ip2}:8080/`);
  const fromA = /^from (\S+):\d+ to srv2$/m.exec(a);
  assert.ok(fromA, `worker -> worker2: ${a}`);
  const senderA = await kubectl(kubeconfig, ["get", "pod", "get-1-to-2", "-o", "jsonpath={.status.podIP}"]);
  assert.equal(fromA![1], senderA.stdout.trim(), "the receiver saw another address than the sender's pod IP (masqueraded?)");
  const b = await getFrom(W2, "get-2-to-1", `http://${ip1}:8080/`);
  const senderB = await kubectl(kubeconfig, ["get", "pod", "get-2-to-1", "-o", "jsonpath={.status.podIP}"]);
  assert.match(b, new RegExp(`^from ${senderB.stdout.trim().replace(/\./g, "\\.")}:\\d+ to srv1$`, "m"));
});

test("a Service whose only endpoint is on another node answers by its DNS name; logs, exec and port-forward work on a worker's pod", async () => {
  await apply([{ apiVersion: "v1", kind: "Service", metadata: { name: "srv2", namespace: "default" }, spec: { selector: { app: "srv2" }, ports: [{ port: 80, targetPort: 8080 }] } }]);
  const out = await getFrom(W1, "get-svc", "http://srv2.default.svc.cluster.local/");
  assert.match(out, /^from \S+ to srv2$/m);
  process.stderr.write(`# Service by name from a worker's pod: ${/attempts \d+/.exec(out)?.[0] ?? out}\n`);
  const logs = await kubectl(kubeconfig, ["logs", "get-svc"]);
  assert.match(logs.stdout, /to srv2/);
  const exec = await kubectl(kubeconfig, ["exec", "srv2", "--", "/echo", "get", "http://127.0.0.1:8080/"]);
  assert.equal(exec.code, 0, exec.stderr);
  assert.match(exec.stdout, /^from 127\.0\.0\.1:\d+ to srv2$/m);
  // port-forward to the worker's pod: this machine's loopback to the pod, through the API server and kubelet.
  const pf = execa(KUBECTL, ["--kubeconfig", kubeconfig, "port-forward", "pod/srv2", "18080:8080"], { reject: false });
  try {
    const got = await waitFor(async () => {
      const r = await fetch("http://127.0.0.1:18080/").catch(() => undefined);
      return !!r && /to srv2/.test(await r.text());
    }, 30_000);
    assert.notEqual(got, -1, "port-forward to the worker's pod did not answer");
  } finally {
    pf.kill("SIGTERM");
    await pf;
  }
});

test("a NodePort answers on every node's address, from another node", async () => {
  await apply([{ apiVersion: "v1", kind: "Service", metadata: { name: "srv1-np", namespace: "default" }, spec: { type: "NodePort", selector: { app: "srv1" }, ports: [{ port: 80, targetPort: 8080 }] } }]);
  const port = (await kubectl(kubeconfig, ["get", "service", "srv1-np", "-o", "jsonpath={.spec.ports[0].nodePort}"])).stdout.trim();
  assert.match(port, /^\d+$/);
  const nodes = Object.keys(ips);
  for (const [i, target] of nodes.entries()) {
    const from = nodes[(i + 1) % nodes.length];
    const ok = await waitFor(async () => (await onNode(from, `curl -s -m 3 http://${ips[target]}:${port}/`)).stdout.includes("to srv1"), 30_000);
    assert.notEqual(ok, -1, `NodePort ${port} on ${target} (${ips[target]}) not answering from ${from}`);
  }
});

// A few minutes of the Kubernetes conformance suite on this cluster (1 control plane + 2 workers):
// specs of sig-network, sig-node, sig-apps and sig-api-machinery that exercise Services across
// nodes, DNS, webhooks the API server calls through a Service, probes and rollouts. The suite (the
// slim test binary, ginkgo) and its stand-in images are built in set-up (scripts/setup.sh runs
// scripts/build-conformance.sh --ci unless KUBEPROV_CONFORMANCE_CI=0); the images are loaded into
// the nodes here, so nothing is pulled. Not built: skipped with why, unless KUBEPROV_CONFORMANCE_CI=1
// (.ci/run) requires it.
test("a subset of the Kubernetes conformance suite passes on the cluster", async (t) => {
  const suite = conformanceDir();
  const e2e = [join(suite, "e2e-slim.test"), join(suite, "e2e.test")].find((f) => existsSync(f));
  const built = !!e2e && existsSync(join(suite, "ginkgo")) && existsSync(join(suite, "images.txt"));
  if (!built && process.env.KUBEPROV_CONFORMANCE_CI !== "1") {
    t.skip(`the conformance suite is not built in ${suite} (bash scripts/setup.sh, or bash scripts/build-conformance.sh --ci)`);
    return;
  }
  assert.ok(built && e2e, `the conformance suite is not built in ${suite}: bash scripts/build-conformance.sh --ci`);
  // Packets from the cluster's networks must not leave this machine (.ci/run blocks them too).
  const iface = await defaultRouteInterface();
  const added = iface ? await blockEgress(iface, egressRules(["10.213.0.0/16"], ["10.244.0.0/16"])) : [];
  t.after(() => (iface ? unblockEgress(iface, added) : undefined));
  const images = readFileSync(join(suite, "images.txt"), "utf8").split("\n").filter(Boolean).filter((i) => CI_SUBSET_IMAGES.some((n) => i.includes(`/${n}:`)));
  const t0 = Date.now();
  for (const img of images) {
    const r = await kubeprov(home, ["image", "load", "--name", NAME, img]);
    assert.equal(r.code, 0, r.stderr);
  }
  const loaded = Date.now();
  const out = mkdtempSync(join(tmpdir(), "kpt-net-conformance-"));
  try {
    const r = await runSuite({ ginkgo: join(suite, "ginkgo"), e2e, kubeconfig, kubectl: KUBECTL, out, procs: 3, focus: CI_SUBSET_FOCUS, timeout: "8m" });
    const specs = existsSync(join(out, "junit_01.xml")) ? parseJunit(readFileSync(join(out, "junit_01.xml"), "utf8")) : [];
    const s = summarize(specs);
    process.stderr.write(`# conformance subset: ${s.passed} passed, ${s.failed} failed in ${((Date.now() - loaded) / 1000).toFixed(0)} s (images loaded in ${((loaded - t0) / 1000).toFixed(0)} s)\n`);
    const tail = readFileSync(r.log, "utf8").split("\n").slice(-60).join("\n");
    assert.deepEqual(s.failures.map((f) => `${f.name}: ${f.message}`), [], tail);
    const missing = CI_SUBSET.filter((n) => !specs.some((x) => x.state === "passed" && x.name.startsWith(n)));
    assert.deepEqual(missing, [], `specs of the subset that did not run and pass:\n${tail}`);
    assert.equal(s.passed, CI_SUBSET.length, `more specs ran than the subset names:\n${specs.map((x) => x.name).join("\n")}`);
    assert.equal(r.exitCode, 0, tail);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});

test("a worker added later with up --nodes 4 reaches the others; nothing changes on them", async () => {
  const r = await kubeprov(home, ["up", "--name", NAME, "--nodes", "4", "--no-kubeconfig", "-o", "json"]);
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const changedElsewhere = r.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { type: string; host?: string; task?: string; status?: string })
    // upload-config keeps the effective cluster file in the cluster: it lists the new host now.
    .filter((e) => e.type === "task" && e.status === "changed" && e.host !== W3 && !e.task?.startsWith("upload-config/"));
  assert.deepEqual(changedElsewhere.map((e) => `${e.host} ${e.task}`), []);
  assert.ok((summaryOf(r.stdout)?.changed ?? 0) > 0);
  const load = await kubeprov(home, ["image", "load", "--name", NAME, IMAGE, "--node", W3]);
  assert.equal(load.code, 0, load.stderr);
  const ip1 = await podIP("srv1");
  const out = await getFrom(W3, "get-3-to-1", `http://${ip1}:8080/`);
  assert.match(out, /^from 10\.244\.\d+\.\d+:\d+ to srv1$/m);
});

test("node delete drains the worker, deletes its Node and its machine; the rest keeps working", async () => {
  await apply([echoPod("on-w3", W3, ["serve"])]);
  await podIP("on-w3");
  // A pod no controller would recreate stops the drain (as kubectl drain does): nothing removed.
  const refused = await kubeprov(home, ["node", "delete", "--name", NAME, W3, "--drain-timeout", "60"]);
  assert.equal(refused.code, 1, refused.stderr.slice(-3000));
  assert.match(refused.stderr, /draining kpt-net-worker3 did not finish: it is cordoned, nothing else was changed/);
  assert.match(refused.stderr, /declare no controller/);
  assert.equal((await kubectl(kubeconfig, ["get", "node", W3])).code, 0);
  // The worker's kubelet made its pods' cgroups in this machine's hierarchies (shared cgroup namespace).
  const w3Cgroups = () => cgroupHierarchies().map((h) => join(h, KUBELET_CGROUP_PARENT, NAME, W3)).filter((d) => existsSync(d));
  assert.ok(w3Cgroups().length > 0, "the worker's cgroup root is on this machine before it is deleted");
  const r = await kubeprov(home, ["node", "delete", "--name", NAME, W3, "--drain-timeout", "60", "--force"]);
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  assert.match(r.stderr, /cordon and drain/);
  const gone = await kubectl(kubeconfig, ["get", "node", W3]);
  assert.notEqual(gone.code, 0);
  assert.match(gone.stderr, /not found/);
  const containers = await execa("docker", ["ps", "-a", "--filter", `name=^${W3}$`, "-q"]);
  assert.equal(String(containers.stdout).trim(), "");
  assert.deepEqual(w3Cgroups(), [], "no cgroup of the deleted worker is left on this machine");
  const list = await kubeprov(home, ["node", "list", "--name", NAME, "-o", "json"]);
  assert.deepEqual((JSON.parse(list.stdout) as Array<{ name: string }>).map((n) => n.name).sort(), [`${NAME}-control-plane`, W1, W2]);
  const bad = await kubeprov(home, ["node", "delete", "--name", NAME, "no-such-node"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /no-such-node is not a node of kpt-net/);
  const ip1 = await podIP("srv1");
  assert.match(await getFrom(W2, "get-after-delete", `http://${ip1}:8080/`), /to srv1$/m);
});

test("up with a smaller count shrinks the cluster the same way: --nodes 2 leaves 1 + 1", async () => {
  // The test's bare pods on the leaving worker would stop the drain (no controller recreates them): gone first, as a user would.
  await kubectl(kubeconfig, ["delete", "pods", "-n", "default", "--field-selector", `spec.nodeName=${W2}`, "--wait=false"]);
  const r = await kubeprov(home, ["up", "--name", NAME, "--nodes", "2", "--no-kubeconfig"], 10 * 60_000);
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  process.stderr.write(`# up --nodes 2 on 1 + 2 (one worker drained and removed): ${(r.ms / 1000).toFixed(1)} s\n`);
  const nodes = await kubectl(kubeconfig, ["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]);
  assert.deepEqual(nodes.stdout.trim().split(" ").sort(), [`${NAME}-control-plane`, W1]);
  const list = await kubeprov(home, ["node", "list", "--name", NAME, "-o", "json"]);
  assert.deepEqual((JSON.parse(list.stdout) as Array<{ name: string }>).map((n) => n.name).sort(), [`${NAME}-control-plane`, W1]);
  assert.equal((await kubectl(kubeconfig, ["get", "--raw", "/readyz"])).stdout.trim(), "ok");
});
