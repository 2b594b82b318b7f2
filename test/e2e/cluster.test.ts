// `kubeprov up --name kpt-cp`: one node that is control plane and worker, real binaries and images
// from the bundle, static pods. What a user checks: /readyz with the printed kubeconfig, the node
// Ready, the standard namespaces, leader leases, file modes on the node, a no-op re-run, recovery
// after the node container restarts, and a broken flag failing init quickly with the evidence.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { parseDocument } from "yaml";
import { dockerCleanup, KUBECTL, kubectl, kubeprov, onNode, removeTestCluster, summaryOf, waitFor } from "../helpers/cluster-e2e.js";
import { newPodResolvesDns } from "../helpers/dns-probe.js";

const NAME = "kpt-cp";
const NODE = `${NAME}-control-plane`;
const home = mkdtempSync(join(tmpdir(), "kpt-cp-"));
const kubeconfig = join(home, "admin.conf");
const clusterFile = join(home, "clusters", NAME, "cluster.yaml");
let upMs = 0;

const readyz = async () => {
  const r = await kubectl(kubeconfig, ["get", "--raw", "/readyz"]);
  return r.code === 0 && r.stdout.trim() === "ok";
};

let upTimings = "";

before(async () => {
  await dockerCleanup(NAME);
  const up = await kubeprov(home, ["up", "--name", NAME, "--no-kubeconfig", "-o", "json", "--timings"]);
  upMs = up.ms;
  upTimings = up.stderr;
  assert.equal(up.code, 0, `up failed:\n${up.stderr.slice(-4000)}`);
  const kc = await kubeprov(home, ["kubeconfig", "--name", NAME]);
  assert.equal(kc.code, 0, kc.stderr);
  writeFileSync(kubeconfig, kc.stdout, { mode: 0o600 });
  process.stderr.write(`# up --name ${NAME}: ${(upMs / 1000).toFixed(1)} s\n`);
});

after(async () => {
  await removeTestCluster(home, NAME);
});

test("up --timings prints each phase, the critical path and what the run waited on", () => {
  assert.match(upTimings, /^timings \(seconds since kubeprov started\):$/m, upTimings);
  for (const phase of ["facts", "preflight", "prepare", "certs", "control-plane", "wait-control-plane", "addons"]) assert.match(upTimings, new RegExp(`^  ${phase} +\\d+\\.\\d\\d +\\d+\\.\\d\\d +\\d+\\.\\d\\d$`, "m"), phase);
  assert.match(upTimings, /^critical path .*\n  \+ *\d+\.\d\d +\d+\.\d\d s  \S+\/\S+ +kpt-cp-control-plane/m, upTimings);
  assert.match(upTimings, /^ +\d+\.\d\d s  wait-control-plane\/readyz on kpt-cp-control-plane: the API server's \/readyz/m, upTimings);
});

test("the printed kubeconfig reaches the API server: /readyz is ok", async () => {
  const r = await kubectl(kubeconfig, ["get", "--raw", "/readyz"]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.trim(), "ok");
  assert.match(readFileSync(kubeconfig, "utf8"), /server: https:\/\/10\.213\.\d+\.\d+:6443/);
});

test("the node turns Ready; the four standard namespaces exist", async () => {
  const ms = await waitFor(async () => {
    const r = await kubectl(kubeconfig, ["get", "node", NODE, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"]);
    return r.stdout.trim() === "True";
  }, 90_000);
  assert.notEqual(ms, -1, "node not Ready within 90 s");
  const ns = await kubectl(kubeconfig, ["get", "namespaces", "-o", "jsonpath={.items[*].metadata.name}"]);
  for (const n of ["default", "kube-system", "kube-public", "kube-node-lease"]) assert.ok(ns.stdout.split(" ").includes(n), `namespace ${n} missing: ${ns.stdout}`);
});

test("controller-manager and scheduler hold their leader leases in kube-system", async () => {
  for (const lease of ["kube-controller-manager", "kube-scheduler"]) {
    const ms = await waitFor(async () => {
      const r = await kubectl(kubeconfig, ["-n", "kube-system", "get", "lease", lease, "-o", "jsonpath={.spec.holderIdentity}"]);
      return r.code === 0 && r.stdout.startsWith(NODE);
    }, 60_000);
    assert.notEqual(ms, -1, `lease ${lease} not held by ${NODE}`);
  }
});

test("status reports each component healthy, the etcd member and certificate expiry", async () => {
  // Components are asked on their own health endpoints; wait for controller-manager and scheduler
  // to finish starting (they answer once they hold their leases).
  let doc: { hosts: Array<Record<string, any>> } = { hosts: [] };
  const ms = await waitFor(async () => {
    const r = await kubeprov(home, ["status", "--name", NAME, "-o", "json"]);
    if (r.code !== 0) return false;
    doc = JSON.parse(r.stdout);
    const comps = doc.hosts[0]?.components ?? {};
    return ["kubelet", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"].every((c) => comps[c]?.health === "ok");
  }, 60_000);
  assert.notEqual(ms, -1, `components not all healthy: ${JSON.stringify(doc.hosts[0]?.components)}`);
  const host = doc.hosts[0];
  assert.equal(host.name, NODE);
  assert.deepEqual(host.etcdMembers.map((m: { name: string }) => m.name), [NODE]);
  assert.match(host.etcdMembers[0].clientURLs[0], /^https:\/\/10\.213\.\d+\.\d+:2379$/);
  const certs = new Map<string, { expires: string }>(host.certificates.map((c: { name: string; expires: string }) => [c.name, c]));
  for (const name of ["ca", "apiserver", "etcd-server", "admin.conf"]) assert.ok(certs.has(name), `certificate ${name} missing from status`);
  const days = (name: string) => (Date.parse(certs.get(name)!.expires) - Date.now()) / 86_400_000;
  assert.ok(days("apiserver") > 360 && days("apiserver") <= 366, `apiserver expires in ${days("apiserver")} days`);
  assert.ok(days("ca") > 3640, `ca expires in ${days("ca")} days`);
  // The text form names the same things.
  const text = await kubeprov(home, ["status", "--name", NAME]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /kube-apiserver\s+ok/);
  assert.match(text.stdout, new RegExp(`etcd members: ${NODE} https://`));
});

test("static pods run the images built from the bundle; keys and kubeconfigs are 0600 on the node", async () => {
  // Mirror pods of the static pods appear in the API as the kubelet registers them.
  let seen = "";
  const ms = await waitFor(async () => {
    const pods = await kubectl(kubeconfig, ["-n", "kube-system", "get", "pods", "-l", "tier=control-plane", "-o", "jsonpath={range .items[*]}{.metadata.name}={.spec.containers[0].image} {end}"]);
    seen = pods.stdout;
    return ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"].every((c) => new RegExp(`${c}-${NODE}=registry\\.k8s\\.io/${c}:`).test(seen));
  }, 60_000);
  assert.notEqual(ms, -1, `control-plane pods: ${seen}`);
  const modes = await onNode(NODE, "stat -c '%a %n' /etc/kubernetes/pki/*.key /etc/kubernetes/pki/etcd/*.key /etc/kubernetes/*.conf /etc/kubernetes/manifests/*.yaml");
  assert.equal(modes.code, 0, modes.stderr);
  const lines = modes.stdout.trim().split("\n");
  assert.ok(lines.length >= 16, modes.stdout);
  for (const l of lines) assert.match(l, /^600 /, `not 0600: ${l}`);
});

test("running init again changes nothing (JSON summary: 0 changed)", async () => {
  const r = await kubeprov(home, ["init", "--name", NAME, "-o", "json"]);
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const s = summaryOf(r.stdout);
  assert.ok(s, "no summary event");
  const changed = r.stdout.split("\n").filter((l) => l.includes('"status":"changed"'));
  assert.equal(s!.changed, 0, `changed on re-run:\n${changed.join("\n")}`);
  assert.equal(s!.failed, 0);
  process.stderr.write(`# no-op init: ${(r.ms / 1000).toFixed(1)} s (tasks ${(s!.durationMs / 1000).toFixed(1)} s)\n`);
});

test("kubeprov stop, then start: start returns once the API, the node and CoreDNS are back", async () => {
  const stop = await kubeprov(home, ["stop", "--name", NAME]);
  assert.equal(stop.code, 0, stop.stderr);
  const state = await execa("docker", ["inspect", "-f", "{{.State.Running}}", NODE]);
  assert.equal(String(state.stdout).trim(), "false");
  // status says so, as `minikube status` does, and exits 1: the cluster is not running.
  const stopped = await kubeprov(home, ["status", "--name", NAME, "-o", "json"]);
  assert.equal(stopped.code, 1, stopped.stderr);
  const doc = JSON.parse(stopped.stdout) as { cluster: { state: string }; hosts: Array<{ name: string; state: string }> };
  assert.equal(doc.cluster.state, "Stopped");
  assert.deepEqual(doc.hosts.map((h) => [h.name, h.state]), [[NODE, "Stopped"]]);
  const start = await kubeprov(home, ["start", "--name", NAME], 400_000);
  assert.equal(start.code, 0, start.stderr.slice(-2000));
  assert.match(start.stderr, /is back: API, 1 node\(s\) Ready, CoreDNS ready/);
  process.stderr.write(`# kubeprov start of a stopped 1-node cluster until API, node and CoreDNS are back: ${(start.ms / 1000).toFixed(1)} s\n`);
  // What start promised, checked independently.
  assert.ok(await readyz());
  const node = await kubectl(kubeconfig, ["get", "node", NODE, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"]);
  assert.equal(node.stdout.trim(), "True");
  // A new pod resolves a cluster name through CoreDNS.
  const dns = await newPodResolvesDns(KUBECTL, kubeconfig, "dns-after-start", 60_000);
  assert.notEqual(dns, -1, "a new pod did not resolve kubernetes.default within 60 s after start");
  const running = await kubeprov(home, ["status", "--name", NAME]);
  assert.equal(running.code, 0, running.stderr);
  assert.match(running.stdout, new RegExp(`^${NODE}\\s+Running\\s`, "m"));
  assert.match(running.stdout, new RegExp(`^cluster ${NAME}: Running$`, "m"));
  process.stderr.write(`# kubeprov start until a new pod resolved kubernetes.default: ${((start.ms + dns) / 1000).toFixed(1)} s\n`);
  const bad = await kubeprov(home, ["start", "--name", NAME, "--node", "no-such-node"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--node no-such-node: not a node of kpt-cp/);
});

test("a flag kube-apiserver does not know fails init within 2 minutes, naming it and showing its log", async () => {
  const doc = parseDocument(readFileSync(clusterFile, "utf8"));
  doc.setIn(["spec", "controlPlane", "extraArgs", "apiserver", "no-such-flag"], "x");
  const broken = join(home, "broken.yaml");
  writeFileSync(broken, doc.toString());
  const r = await kubeprov(home, ["init", "-f", broken], 180_000);
  assert.equal(r.code, 1, `exit ${r.code}\n${r.stderr.slice(-2000)}`);
  assert.ok(r.ms < 120_000, `took ${r.ms} ms`);
  assert.match(r.stderr, /kube-apiserver/);
  assert.match(r.stderr, /unknown flag: --no-such-flag/);
  process.stderr.write(`# broken flag detected in ${(r.ms / 1000).toFixed(1)} s\n`);
  // The good file puts it back.
  const fixed = await kubeprov(home, ["init", "--name", NAME], 300_000);
  assert.equal(fixed.code, 0, fixed.stderr.slice(-2000));
  assert.ok(await readyz());
});
