// The cluster plan: one task graph for every topology and scope (init, join, all), checked as data:
// it is a valid graph, each part runs where it should, etcd members join one at a time in file
// order, and the HA configuration files render what haproxy and keepalived themselves accept.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseClusterText } from "../../provisioner/spec/load.js";
import type { Host, RunContext } from "../../provisioner/engine/task.js";
import { createRunContext } from "../../provisioner/engine/context.js";
import { MemoryReporter } from "../../provisioner/events.js";
import { validateTaskGraph } from "../../provisioner/engine/runner.js";
import { clusterTasks } from "../../provisioner/plan/cluster.js";
import { etcdFlags } from "../../provisioner/tasks/controlplane-flags.js";
import { parseMemberList } from "../../provisioner/tasks/etcdmember.js";
import { renderHaproxyConfig, renderKeepalivedConfig } from "../../provisioner/tasks/ha.js";
import { controlPlaneQuorumWarning } from "../../provisioner/plan/topology.js";
import { cniConfig, flannelObjects } from "../../provisioner/bootstrap/manifests.js";
import { clusterTextWithoutHost, quorumAfterRemoval } from "../../provisioner/lifecycle/remove-node.js";

const text = (ha: boolean) => `apiVersion: kubeprov/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
${ha ? "  ha: {enabled: true, virtualIP: 10.213.0.100}\n" : ""}  hosts:
  - {name: cp1, address: 10.213.0.10, roles: [control-plane]}
  - {name: cp2, address: 10.213.0.11, roles: [control-plane]}
  - {name: w1, address: 10.213.0.20, roles: [worker]}
  - {name: cp3, address: 10.213.0.12, roles: [control-plane]}
`;

function ctxOf(ha: boolean): RunContext {
  const cluster = parseClusterText(text(ha), "demo.yaml");
  const hosts: Host[] = cluster.spec.hosts.map((spec) => ({ name: spec.name, address: spec.address, nodeIP: spec.address, roles: spec.roles, spec, transport: {} as Host["transport"] }));
  return createRunContext({ cluster, hosts, reporter: new MemoryReporter() });
}

const hostsOf = (tasks: ReturnType<typeof clusterTasks>, ctx: RunContext, name: string) => tasks.find((t) => t.name === name)!.hosts(ctx).map((h) => h.name);

test("every scope is a valid task graph with unique names", () => {
  for (const scope of ["init", "join", "all"] as const) {
    const tasks = clusterTasks(scope);
    assert.doesNotThrow(() => validateTaskGraph([{ name: "facts/gather", phase: "facts", description: "", hosts: () => [], check: async () => ({ needed: false }), apply: async () => {} }, ...tasks], ["facts/gather"]), scope);
  }
});

test("init runs on the first control plane, join on the others, all on every host", () => {
  const ctx = ctxOf(true);
  const all = clusterTasks("all");
  assert.deepEqual(hostsOf(all, ctx, "preflight/checks"), ["cp1", "cp2", "w1", "cp3"]);
  assert.deepEqual(hostsOf(all, ctx, "certs/pki"), ["cp1", "cp2", "cp3"]);
  assert.deepEqual(hostsOf(all, ctx, "etcd/local"), ["cp1"]);
  assert.deepEqual(hostsOf(all, ctx, "control-plane-join/etcd-member-add"), ["cp2", "cp3"]);
  assert.deepEqual(hostsOf(all, ctx, "kubelet-start/kubelet-bootstrap"), ["w1"]);
  assert.deepEqual(hostsOf(all, ctx, "ha/keepalived"), ["cp1", "cp2", "cp3"]);
  assert.deepEqual(hostsOf(all, ctx, "ha/endpoint"), ["cp1"]);
  const init = clusterTasks("init");
  assert.deepEqual(hostsOf(init, ctx, "preflight/checks"), ["cp1"]);
  assert.deepEqual(hostsOf(init, ctx, "control-plane-join/etcd-member-add"), []);
  const join = clusterTasks("join");
  assert.deepEqual(hostsOf(join, ctx, "preflight/checks"), ["cp2", "w1", "cp3"]);
  assert.deepEqual(hostsOf(join, ctx, "etcd/local"), []);
  assert.deepEqual(hostsOf(join, ctx, "bootstrap-token/token"), ["cp1"]);
  // Without spec.ha nothing of haproxy or keepalived runs.
  assert.deepEqual(hostsOf(clusterTasks("all"), ctxOf(false), "ha/haproxy"), []);
});

test("etcd members join one at a time in file order, each with the members before it", () => {
  const ctx = ctxOf(false);
  const add = clusterTasks("all").find((t) => t.name === "control-plane-join/etcd-member-add")!;
  assert.equal(add.serial, true);
  const flags = (name: string) => etcdFlags(ctx.cluster, ctx.hosts.find((h) => h.name === name)!);
  assert.equal(flags("cp1").get("initial-cluster"), "cp1=https://10.213.0.10:2380");
  assert.equal(flags("cp1").get("initial-cluster-state"), "new");
  assert.equal(flags("cp3").get("initial-cluster"), "cp1=https://10.213.0.10:2380,cp2=https://10.213.0.11:2380,cp3=https://10.213.0.12:2380");
  assert.equal(flags("cp3").get("initial-cluster-state"), "existing");
});

test("etcdctl member list (simple format) parses, learners and unstarted members included", () => {
  const m = parseMemberList(
    "8e9e05c52164694d, started, cp1, https://10.213.0.10:2380, https://10.213.0.10:2379, false\n" +
      "91bc3c398fb3c146, unstarted, , https://10.213.0.11:2380, , true\n",
  );
  assert.equal(m.length, 2);
  assert.deepEqual(m[1], { id: "91bc3c398fb3c146", started: false, name: "", peerURLs: ["https://10.213.0.11:2380"], clientURLs: [], learner: true });
  assert.equal(m[0].learner, false);
});

test("HA: the endpoint defaults to the VIP and haproxy's port; 6443 for haproxy is refused with the field named", () => {
  assert.equal(ctxOf(true).cluster.spec.controlPlaneEndpoint, "10.213.0.100:8443");
  assert.throws(
    () => parseClusterText(text(true).replace("virtualIP: 10.213.0.100}", "virtualIP: 10.213.0.100, haproxyPort: 6443}"), "demo.yaml"),
    /demo\.yaml:\d+:\d+ spec\.ha\.haproxyPort: haproxy cannot listen on 6443/,
  );
  assert.equal(controlPlaneQuorumWarning(3), undefined);
  assert.match(controlPlaneQuorumWarning(2) ?? "", /quorum/);
});

test("haproxy and keepalived accept the configurations kubeprov writes (their own -c checks)", (t) => {
  const ctx = ctxOf(true);
  const cps = ctx.hosts.filter((h) => h.roles.includes("control-plane"));
  const dir = mkdtempSync(join(tmpdir(), "kpt-ha-"));
  try {
    const cfg = renderHaproxyConfig(ctx.cluster, cps);
    assert.equal((cfg.match(/^\s+server cp\d 10\.213\.0\.1\d:6443$/gm) ?? []).length, 3, cfg);
    const ka = renderKeepalivedConfig(ctx.cluster, cps[1], cps);
    assert.match(ka, /unicast_src_ip 10\.213\.0\.11/);
    assert.match(ka, /^\s+10\.213\.0\.10$/m);
    assert.doesNotMatch(ka, /^\s+10\.213\.0\.11$/m);
    assert.match(ka, /advert_int 0\.2/);
    assert.match(ka, /priority 149/);
    if (spawnSync("haproxy", ["-v"]).status !== 0) return t.skip("haproxy not installed");
    writeFileSync(join(dir, "haproxy.cfg"), cfg.replace("/run/haproxy/admin.sock", join(dir, "admin.sock")));
    execFileSync("haproxy", ["-c", "-f", join(dir, "haproxy.cfg")], { stdio: "pipe" });
    writeFileSync(join(dir, "check.sh"), "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    writeFileSync(join(dir, "keepalived.conf"), ka.replace("/etc/keepalived/kubeprov-check-apiserver.sh", join(dir, "check.sh")));
    const r = spawnSync("keepalived", ["--config-test", "-f", join(dir, "keepalived.conf")], { encoding: "utf8" });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("CNI: flannel's objects carry the pod subnet and backend; the bridge masquerades only without flannel; none writes nothing", () => {
  const ctx = ctxOf(false);
  const objs = flannelObjects(ctx.cluster, "v0.28.10");
  const cm = objs.find((o) => o.kind === "ConfigMap")!;
  assert.deepEqual(JSON.parse((cm.data as Record<string, string>)["net-conf.json"]), { Network: "10.244.0.0/16", EnableNFTables: false, Backend: { Type: "host-gw" } });
  const ds = objs.find((o) => o.kind === "DaemonSet") as unknown as { spec: { template: { spec: { containers: Array<{ image: string; command: string[] }> } } } };
  assert.equal(ds.spec.template.spec.containers[0].image, "ghcr.io/flannel-io/flannel:v0.28.10");
  assert.ok(ds.spec.template.spec.containers[0].command.includes("--kube-subnet-mgr"));
  assert.equal(JSON.parse(cniConfig("10.244.1.0/24", "flannel")).plugins[0].ipMasq, false);
  assert.equal(JSON.parse(cniConfig("10.244.1.0/24", "bridge")).plugins[0].ipMasq, true);
  // vxlan: the bridge's MTU leaves room for the encapsulation; otherwise the plugin's default.
  assert.equal(JSON.parse(cniConfig("10.244.1.0/24", "flannel", 1450)).plugins[0].mtu, 1450);
  assert.equal(JSON.parse(cniConfig("10.244.1.0/24", "flannel")).plugins[0].mtu, undefined);
  const none = parseClusterText(text(false).replace("spec:\n", "spec:\n  networking: {cni: none}\n"), "demo.yaml");
  const noneCtx = { ...ctx, cluster: none };
  const tasks = clusterTasks("all");
  for (const name of ["addons/cni", "join/cni", "control-plane-join/cni", "addons/flannel"]) assert.deepEqual(hostsOf(tasks, noneCtx, name), [], name);
  assert.deepEqual(hostsOf(tasks, ctx, "addons/flannel"), ["cp1"]);
});

test("removing a node: etcd's quorum rule, and the cluster file without it (comments kept)", () => {
  assert.deepEqual(quorumAfterRemoval(3, 2), { ok: true, need: 2 });
  assert.deepEqual(quorumAfterRemoval(3, 1), { ok: false, need: 2 });
  assert.deepEqual(quorumAfterRemoval(2, 1), { ok: true, need: 1 });
  assert.equal(quorumAfterRemoval(1, 0).ok, false);
  const out = clusterTextWithoutHost(`# mine\n${text(false)}`, "w1");
  assert.match(out, /^# mine/);
  const c = parseClusterText(out, "demo.yaml");
  assert.deepEqual(c.spec.hosts.map((h) => h.name), ["cp1", "cp2", "cp3"]);
});

test("upload-certs runs on the first control plane only with --upload-certs; join's download-certs comes before anything that writes", () => {
  const ctx = ctxOf(false);
  const init = clusterTasks("init");
  assert.deepEqual(hostsOf(init, ctx, "upload-certs/secret"), []);
  const key = "ab".repeat(32);
  ctx.options = { uploadCerts: true, certificateKey: key };
  assert.deepEqual(hostsOf(init, ctx, "upload-certs/secret"), ["cp1"]);
  assert.ok(init.find((t) => t.name === "upload-certs/secret")!.after!.includes("bootstrap-rbac/cluster-admins"));

  const join = clusterTasks("join");
  const download = join.find((t) => t.name === "download-certs/secret")!;
  assert.ok(download.readOnly, "it reads only: a dry run runs it too");
  assert.deepEqual(download.hosts(ctx), ctx.hosts.filter((h) => ["cp2", "cp3"].includes(h.name)));
  ctx.options = {};
  assert.deepEqual(download.hosts(ctx), []);
  // Every task that may write on a host waits for it (preflight is read-only, the other tasks come after).
  for (const t of join) {
    if (t.phase === "preflight" || t === download) continue;
    const seen = new Set<string>();
    const reaches = (name: string): boolean => {
      if (name === download.name) return true;
      if (seen.has(name)) return false;
      seen.add(name);
      return (join.find((x) => x.name === name)?.after ?? []).some(reaches);
    };
    assert.ok(reaches(t.name), `${t.name} does not wait for download-certs`);
  }
  assert.equal(clusterTasks("all").some((t) => t.name === "download-certs/secret"), false);
});
