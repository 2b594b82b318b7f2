// External etcd (role etcd) as data: the topology module's answers, the cluster file's rules, the
// plan (which task runs where), the flags, the PKI each kind of host holds (real keys, checked
// with openssl), `up --etcd-nodes` planning, and status for an etcd host.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseClusterText } from "../../provisioner/spec/load.js";
import { ConfigError } from "../../provisioner/errors.js";
import type { Host, RunContext } from "../../provisioner/engine/task.js";
import { createRunContext } from "../../provisioner/engine/context.js";
import { MemoryReporter } from "../../provisioner/events.js";
import { validateTaskGraph } from "../../provisioner/engine/runner.js";
import { clusterTasks } from "../../provisioner/plan/cluster.js";
import { apiserverFlags, etcdFlags } from "../../provisioner/tasks/controlplane-flags.js";
import { clusterQuorumWarning, etcdMembers, externalEtcdRefusal, kubernetesNodes, workers } from "../../provisioner/plan/topology.js";
import { pkiContext } from "../../provisioner/pki/certlist.js";
import { planPki } from "../../provisioner/pki/plan.js";
import { materialize } from "../../provisioner/pki/materialize.js";
import { CONTROL_PLANE_EXTERNAL_ETCD_PKI, ETCD_HOST_PKI, initialClusterOf, renderExternalEtcdUnit } from "../../provisioner/tasks/externaletcd.js";
import { binariesFor } from "../../provisioner/tasks/prepare.js";
import { checkEtcdTopology, planUp } from "../../provisioner/cli/commands/up.js";
import { planNodes } from "../../provisioner/drivers/docker/plan.js";
import { nodeOrder } from "../../provisioner/drivers/docker/driver.js";
import { hostKind, parseKubernetesProbe } from "../../provisioner/status/kubernetes.js";
import { UsageError } from "../../provisioner/errors.js";

const fileText = (extra = "") => `apiVersion: kubeprov/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  hosts:
  - {name: cp1, address: 10.213.0.10, roles: [control-plane]}
  - {name: cp2, address: 10.213.0.11, roles: [control-plane]}
  - {name: w1, address: 10.213.0.20, roles: [worker]}
  - {name: e1, address: 10.213.0.30, roles: [etcd]}
  - {name: e2, address: 10.213.0.31, roles: [etcd]}
  - {name: e3, address: 10.213.0.32, roles: [etcd]}
${extra}`;

function ctxOf(text: string): RunContext {
  const cluster = parseClusterText(text, "demo.yaml");
  const hosts: Host[] = cluster.spec.hosts.map((spec) => ({ name: spec.name, address: spec.address, nodeIP: spec.address, roles: spec.roles, spec, transport: {} as Host["transport"] }));
  return createRunContext({ cluster, hosts, reporter: new MemoryReporter() });
}
const names = (hs: { name: string }[]) => hs.map((h) => h.name);

test("topology: etcdMembers are the etcd hosts when any exist, else the control planes; etcd hosts are no workers", () => {
  const ctx = ctxOf(fileText());
  assert.deepEqual(names(etcdMembers(ctx)), ["e1", "e2", "e3"]);
  assert.deepEqual(names(workers(ctx)), ["w1"]);
  assert.deepEqual(names(kubernetesNodes(ctx)), ["cp1", "cp2", "w1"]);
  const stacked = ctxOf(fileText().split("\n").filter((l) => !l.includes("[etcd]")).join("\n"));
  assert.deepEqual(names(etcdMembers(stacked)), ["cp1", "cp2"]);
  assert.equal(externalEtcdRefusal(stacked.cluster, "x"), undefined);
  assert.match(externalEtcdRefusal(ctx.cluster, "etcd snapshot restore") ?? "", /etcd snapshot restore works on stacked etcd.*role etcd: e1, e2, e3/);
});

test("cluster file: role etcd alone is accepted; with control-plane (stacked) or worker it is refused, the field named", () => {
  assert.doesNotThrow(() => parseClusterText(fileText(), "demo.yaml"));
  const both = fileText().replace("{name: e1, address: 10.213.0.30, roles: [etcd]}", "{name: e1, address: 10.213.0.30, roles: [control-plane, etcd]}");
  assert.throws(() => parseClusterText(both, "demo.yaml"), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(String((e as Error).message + ((e as ConfigError).details ?? "")), /spec\.hosts\[3\]\.roles\[1\].*stacked etcd/);
    return true;
  });
  const worker = fileText().replace("{name: e2, address: 10.213.0.31, roles: [etcd]}", "{name: e2, address: 10.213.0.31, roles: [etcd, worker]}");
  assert.throws(() => parseClusterText(worker, "demo.yaml"), /spec\.hosts\[4\]\.roles\[0\].*runs etcd only/);
});

test("quorum warnings count the etcd members: the etcd hosts with external etcd", () => {
  assert.equal(clusterQuorumWarning(ctxOf(fileText()).cluster), undefined, "3 etcd hosts, 2 control planes: no warning");
  const two = ctxOf(fileText().split("\n").filter((l) => !l.includes("name: e3")).join("\n"));
  assert.match(clusterQuorumWarning(two.cluster) ?? "", /2 etcd hosts is even/);
  const up = { name: "demo", nodes: 3, controlPlanes: 2, kubernetesVersion: "v1.37.2", kubernetes: true, driver: "docker" };
  assert.deepEqual(planUp({ ...up, etcdNodes: 3 }).warnings, []);
  assert.match(planUp({ ...up, etcdNodes: 2 }).warnings.join(), /--etcd-nodes 2: 2 etcd hosts is even/);
  assert.match(planUp({ ...up, etcdNodes: 0 }).warnings.join(), /--control-planes 2: 2 control planes is even/);
  assert.throws(() => planUp({ ...up, etcdNodes: -1 }), UsageError);
});

test("plan: the etcd hosts get preflight, binaries and their etcd cluster; control planes no etcd; etcd before the control plane", () => {
  const ctx = ctxOf(fileText());
  const tasks = clusterTasks("all");
  assert.doesNotThrow(() => validateTaskGraph([{ name: "facts/gather", phase: "facts", description: "", hosts: () => [], check: async () => ({ needed: false }), apply: async () => {} }, ...tasks], ["facts/gather"]));
  const on = (n: string) => names(tasks.find((t) => t.name === n)!.hosts(ctx));
  assert.deepEqual(on("preflight/checks"), ["cp1", "cp2", "w1", "e1", "e2", "e3"]);
  assert.deepEqual(on("prepare/binaries"), ["cp1", "cp2", "w1", "e1", "e2", "e3"]);
  assert.deepEqual(on("prepare/containerd-config"), ["cp1", "cp2", "w1"]);
  for (const t of ["etcd-external/certs", "etcd-external/member-add", "etcd-external/member", "etcd-external/promote", "etcd-external/health"]) assert.deepEqual(on(t), ["e1", "e2", "e3"], t);
  for (const t of ["etcd/data-dir", "etcd/local", "control-plane-join/etcd-member-add", "control-plane-join/etcd", "control-plane-join/etcd-promote"]) assert.deepEqual(on(t), [], t);
  assert.deepEqual(on("certs/pki"), ["cp1", "cp2"]);
  assert.deepEqual(on("kubelet-start/kubelet-bootstrap"), ["w1"]);
  const byName = new Map(tasks.map((t) => [t.name, t]));
  assert.ok(byName.get("certs/pki")!.after!.includes("etcd-external/certs"), "control-plane certs wait for the etcd CA");
  assert.ok(byName.get("control-plane/kube-apiserver")!.after!.includes("etcd-external/health"), "the first API server waits for a healthy etcd");
  // join alone: the external etcd exists already (made with init).
  assert.deepEqual(names(clusterTasks("join").find((t) => t.name === "etcd-external/member")!.hosts(ctx)), []);
  // stacked (no etcd hosts): nothing external runs, the local etcd does.
  const stacked = ctxOf(fileText().split("\n").filter((l) => !l.includes("[etcd]")).join("\n"));
  assert.deepEqual(names(tasks.find((t) => t.name === "etcd-external/member")!.hosts(stacked)), []);
  assert.deepEqual(names(tasks.find((t) => t.name === "etcd/local")!.hosts(stacked)), ["cp1"]);
});

test("flags: the API server lists every external member over https; the members start as one new cluster of all", () => {
  const ctx = ctxOf(fileText());
  const [cp1, , , e1, e2] = ctx.hosts;
  assert.equal(apiserverFlags(ctx.cluster, cp1).get("etcd-servers"), "https://10.213.0.30:2379,https://10.213.0.31:2379,https://10.213.0.32:2379");
  assert.equal(apiserverFlags(ctx.cluster, cp1).get("etcd-cafile"), "/etc/kubernetes/pki/etcd/ca.crt");
  for (const h of [e1, e2]) {
    const f = etcdFlags(ctx.cluster, h);
    assert.equal(f.get("initial-cluster"), "e1=https://10.213.0.30:2380,e2=https://10.213.0.31:2380,e3=https://10.213.0.32:2380");
    assert.equal(f.get("initial-cluster-state"), "new");
    assert.equal(f.get("name"), h.name);
  }
  const unit = renderExternalEtcdUnit(ctx.cluster, e2);
  assert.match(unit, /kubeprov/, "reset recognises the unit as kubeprov's");
  assert.match(unit, /ExecStart=\/usr\/local\/bin\/etcd \\\n {2}--name=e2/);
  assert.deepEqual(binariesFor(ctx.cluster, ["etcd"]), ["etcd", "etcdctl", "etcdutl"]);
  assert.deepEqual(binariesFor(ctx.cluster, ["etcd"], ["etcd", "kubelet"]), ["etcd"]);
});

test("PKI: an etcd host holds the etcd CA and its own leaves; a control plane signs apiserver-etcd-client without keeping the CA key", async () => {
  const cluster = ctxOf(fileText()).cluster;
  const dir = mkdtempSync(join(tmpdir(), "kpt-xetcd-pki-"));
  try {
    const e1 = pkiContext(cluster, "e1", { certDir: join(dir, "e1"), kubeconfigDir: join(dir, "e1k") });
    const first = planPki(e1, new Map(), { certs: true, kubeconfigs: false, part: ETCD_HOST_PKI });
    assert.deepEqual(first.errors, []);
    assert.deepEqual(first.decisions.map((d) => `${d.action} ${d.name}`), ["create etcd-ca", "create etcd-server", "create etcd-peer", "create etcd-healthcheck-client"]);
    const writes = await materialize(first);
    const file = (ws: typeof writes, rel: string) => ws.find((w) => w.path.endsWith(rel))?.data;
    const shared = new Map([
      ["etcd/ca.crt", file(writes, "etcd/ca.crt")!],
      ["etcd/ca.key", file(writes, "etcd/ca.key")!],
    ]);
    const cp = pkiContext(cluster, "cp1", { certDir: join(dir, "cp1"), kubeconfigDir: join(dir, "cp1k") });
    const plan = planPki(cp, new Map(), { certs: true, kubeconfigs: false, shared, part: CONTROL_PLANE_EXTERNAL_ETCD_PKI, signOnly: ["etcd-ca"] });
    assert.deepEqual(plan.errors, []);
    assert.deepEqual(plan.decisions.map((d) => d.name).sort(), ["apiserver", "apiserver-etcd-client", "apiserver-kubelet-client", "ca", "etcd-ca", "front-proxy-ca", "front-proxy-client", "sa"]);
    const cpWrites = await materialize(plan);
    const paths = cpWrites.map((w) => w.path.slice(cp.certDir.length + 1)).sort();
    assert.ok(paths.includes("etcd/ca.crt") && paths.includes("apiserver-etcd-client.crt"), paths.join(" "));
    for (const p of ["etcd/ca.key", "etcd/server.crt", "etcd/peer.crt", "etcd/healthcheck-client.crt"]) assert.ok(!paths.includes(p), `${p} must not be on a control plane`);
    // openssl: the client certificate chains to the etcd CA and is a client certificate.
    const ca = join(dir, "etcd-ca.crt");
    const leaf = join(dir, "client.crt");
    writeFileSync(ca, shared.get("etcd/ca.crt")!);
    writeFileSync(leaf, file(cpWrites, "apiserver-etcd-client.crt")!);
    assert.match(execFileSync("openssl", ["verify", "-CAfile", ca, "-purpose", "sslclient", leaf], { encoding: "utf8" }), /OK/);
    // A re-plan with the files written keeps everything (a converged control plane changes nothing).
    const snapshot = new Map(cpWrites.map((w) => [w.path, w.data] as const));
    const again = planPki(cp, snapshot, { certs: true, kubeconfigs: false, shared, part: CONTROL_PLANE_EXTERNAL_ETCD_PKI, signOnly: ["etcd-ca"] });
    assert.deepEqual(again.decisions.filter((d) => d.action !== "keep").map((d) => d.name), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("up --etcd-nodes: etcd machines named like kind's, ordered last; an existing cluster keeps its etcd topology, growing only", () => {
  assert.deepEqual(
    planNodes("demo", 3, 2, 3).map((m) => `${m.node}:${m.roles.join(",")}`),
    ["demo-control-plane:control-plane", "demo-control-plane2:control-plane", "demo-worker:worker", "demo-etcd:etcd", "demo-etcd2:etcd", "demo-etcd3:etcd"],
  );
  const sorted = planNodes("demo", 3, 2, 2).reverse().sort(nodeOrder).map((m) => m.node);
  assert.deepEqual(sorted, ["demo-control-plane", "demo-control-plane2", "demo-worker", "demo-etcd", "demo-etcd2"]);
  const existing = planNodes("demo", 3, 2, 3);
  assert.doesNotThrow(() => checkEtcdTopology({ name: "demo", etcdNodes: 3 }, existing));
  assert.doesNotThrow(() => checkEtcdTopology({ name: "demo", etcdNodes: 5 }, []));
  assert.doesNotThrow(() => checkEtcdTopology({ name: "demo", etcdNodes: 5 }, existing), "more etcd hosts join as learners");
  assert.throws(() => checkEtcdTopology({ name: "demo", etcdNodes: 2 }, existing), /has 3 external etcd host\(s\); removing etcd hosts is not supported/);
  assert.throws(() => checkEtcdTopology({ name: "demo", etcdNodes: 0 }, existing), /removing etcd hosts/);
  assert.throws(() => checkEtcdTopology({ name: "demo", etcdNodes: 3 }, planNodes("demo", 3, 1)), /stacked.*not supported/);
});

test("status: an etcd host reports etcd only, with the members and the leader it sees", () => {
  const ctx = ctxOf(fileText());
  assert.equal(hostKind(ctx.cluster, ctx.hosts[3]), "etcd");
  assert.equal(hostKind(ctx.cluster, ctx.hosts[0]), "control-plane-external-etcd");
  assert.equal(hostKind(ctx.cluster, ctx.hosts[2]), "worker");
  const out = [
    'etcd={"health":"true","reason":""}',
    'etcd.members={"members":[{"ID":"11","name":"e1","peerURLs":["https://10.213.0.30:2380"],"clientURLs":["https://10.213.0.30:2379"]},{"ID":"12","name":"e2","peerURLs":[],"clientURLs":[]}]}',
    'etcd.status={"leader":"12"}',
  ].join("\n");
  const s = parseKubernetesProbe(out, "etcd");
  assert.deepEqual(Object.keys(s.components as object), ["etcd"]);
  assert.deepEqual((s.etcdMembers as Array<{ name: string; leader?: boolean }>).map((m) => `${m.name}${m.leader ? "*" : ""}`), ["e1", "e2*"]);
  const cp = parseKubernetesProbe("kubelet=ok\nkube-apiserver=ok\nkube-controller-manager=ok\nkube-scheduler=ok\n", "control-plane-external-etcd");
  assert.deepEqual(Object.keys(cp.components as object), ["kubelet", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]);
});

test("a member keeps the initial cluster it started with; a joining host names the members etcd holds", () => {
  const ctx = ctxOf(fileText());
  const e2 = ctx.hosts[4];
  const started = renderExternalEtcdUnit(ctx.cluster, e2);
  const kept = initialClusterOf(started);
  assert.deepEqual(kept, { cluster: "e1=https://10.213.0.30:2380,e2=https://10.213.0.31:2380,e3=https://10.213.0.32:2380", state: "new" });
  // The file grows by e4: e2's unit stays byte for byte the same (no restart of a member).
  const grown = ctxOf(fileText("  - {name: e4, address: 10.213.0.33, roles: [etcd]}\n"));
  assert.equal(renderExternalEtcdUnit(grown.cluster, grown.hosts[4], kept), started);
  const e4 = grown.hosts[6];
  const joining = renderExternalEtcdUnit(grown.cluster, e4, { cluster: `${kept!.cluster},e4=https://10.213.0.33:2380`, state: "existing" });
  assert.match(joining, /--initial-cluster=e1=https:\/\/10\.213\.0\.30:2380,.*,e4=https:\/\/10\.213\.0\.33:2380 /);
  assert.match(joining, /--initial-cluster-state=existing/);
  assert.equal(initialClusterOf("ExecStart=/usr/local/bin/etcd --name=x"), undefined);
});
