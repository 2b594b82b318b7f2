// `kubeprov up --etcd-nodes 3 --control-planes 2 --nodes 3`: kubeadm's external etcd topology on
// real binaries. Three machines with role etcd run their own etcd cluster as systemd units (no
// kubelet: they are no Kubernetes nodes); the two control planes run no etcd and reach the
// external members with apiserver-etcd-client; one worker. Then a no-op re-run, status, a
// snapshot from an etcd host, and one etcd host stopped while the API stays writable. (Adding an
// etcd host to the running cluster is not in the suite: see the README, "External etcd".)
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { assertVotingMembers, dockerCleanup, ETCDCTL, kubectl, kubeprov, onNode, removeTestCluster, summaryOf, waitFor } from "../helpers/cluster-e2e.js";

const NAME = "kpt-xetcd";
const CPS = [`${NAME}-control-plane`, `${NAME}-control-plane2`];
const WORKER = `${NAME}-worker`;
const ETCDS = [`${NAME}-etcd`, `${NAME}-etcd2`, `${NAME}-etcd3`];
const upWith = (etcdNodes: number) => ["up", "--name", NAME, "--etcd-nodes", String(etcdNodes), "--control-planes", "2", "--nodes", "3", "--no-kubeconfig", "-o", "json"];
const UP = upWith(3);
const home = mkdtempSync(join(tmpdir(), "kpt-xetcd-"));
const kubeconfig = join(home, "admin.conf");

const failedLines = (out: string) => out.split("\n").filter((l) => l.includes('"failed"') || l.includes('"warn"')).join("\n");

before(async () => {
  await dockerCleanup(NAME);
  const up = await kubeprov(home, UP, 15 * 60_000);
  assert.equal(up.code, 0, `up failed:\n${failedLines(up.stdout)}\n${up.stderr.slice(-4000)}`);
  process.stderr.write(`# up --etcd-nodes 3 --control-planes 2 --nodes 3: ${(up.ms / 1000).toFixed(1)} s\n`);
  const kc = await kubeprov(home, ["kubeconfig", "--name", NAME]);
  assert.equal(kc.code, 0, kc.stderr);
  writeFileSync(kubeconfig, kc.stdout, { mode: 0o600 });
});

after(async () => {
  await removeTestCluster(home, NAME);
});

test("every Kubernetes node turns Ready; the etcd hosts are no nodes and run no kubelet", async () => {
  const want = [...CPS, WORKER].sort();
  const ms = await waitFor(async () => {
    const n = await kubectl(kubeconfig, ["get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=='Ready')].status}{\"\\n\"}{end}"]);
    const lines = n.stdout.trim().split("\n").filter(Boolean);
    return lines.length === want.length && lines.every((l) => l.endsWith("=True"));
  }, 180_000, 2000);
  const nodes = await kubectl(kubeconfig, ["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]);
  assert.notEqual(ms, -1, `not every node Ready within 180 s: ${nodes.stdout}`);
  assert.deepEqual(nodes.stdout.trim().split(/\s+/).sort(), want);
  for (const e of ETCDS) {
    const r = await onNode(e, "systemctl is-active etcd; systemctl is-active kubelet; test -e /usr/local/bin/kubelet && echo has-kubelet || echo no-kubelet");
    assert.deepEqual(r.stdout.trim().split("\n"), ["active", "inactive", "no-kubelet"], `${e}: ${r.stdout} ${r.stderr}`);
  }
});

test("etcd: 3 started voting members on the etcd hosts; the control planes have no etcd and no etcd CA key", async () => {
  await assertVotingMembers(ETCDS[0], ETCDS);
  const health = await onNode(ETCDS[1], `${ETCDCTL} endpoint health --cluster`);
  assert.equal((health.stdout.match(/is healthy/g) ?? []).length, 3, health.stdout + health.stderr);
  // Each member's serving certificate names its own host and address.
  for (const e of ETCDS) {
    const r = await onNode(e, "openssl x509 -in /etc/kubernetes/pki/etcd/server.crt -noout -subject -ext subjectAltName; hostname -i");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`CN ?= ?${e}\\b`));
    const ip = r.stdout.trim().split("\n").pop()!.trim().split(/\s+/)[0];
    assert.match(r.stdout, new RegExp(`IP Address:${ip.replace(/\./g, "\\.")}\\b`));
  }
  // Only the first etcd host keeps the etcd CA key, as in kubeadm's guide for etcd hosts.
  const keys = await Promise.all(ETCDS.map((e) => onNode(e, "test -e /etc/kubernetes/pki/etcd/ca.key && echo key || echo nokey")));
  assert.deepEqual(keys.map((k) => k.stdout.trim()), ["key", "nokey", "nokey"]);
  for (const cp of CPS) {
    const r = await onNode(
      cp,
      [
        "ls /etc/kubernetes/pki/etcd",
        "test -e /etc/kubernetes/pki/apiserver-etcd-client.key && echo client-key",
        "test -e /var/lib/etcd/member && echo etcd-data || echo no-etcd-data",
        "pgrep -x etcd >/dev/null && echo etcd-running || echo no-etcd",
        "grep -- --etcd-servers= /etc/kubernetes/manifests/kube-apiserver.yaml",
      ].join("; "),
    );
    const lines = r.stdout.trim().split("\n").map((l) => l.trim());
    assert.equal(lines[0], "ca.crt", `${cp}: /etc/kubernetes/pki/etcd holds ${r.stdout}`);
    assert.deepEqual(lines.slice(1, 4), ["client-key", "no-etcd-data", "no-etcd"], `${cp}: ${r.stdout}`);
    const servers = /--etcd-servers=(\S+)/.exec(r.stdout)?.[1] ?? "";
    assert.equal(servers.split(",").length, 3, servers);
    for (const url of servers.split(",")) assert.match(url, /^https:\/\/10\.213\.\d+\.\d+:2379$/);
  }
  // The API server's client certificate is accepted by the external etcd (the API answers reads).
  const ns = await kubectl(kubeconfig, ["get", "namespace", "kube-system", "-o", "name"]);
  assert.equal(ns.stdout.trim(), "namespace/kube-system", ns.stderr);
});

test("a second up changes nothing", async () => {
  const again = await kubeprov(home, UP, 10 * 60_000);
  assert.equal(again.code, 0, `${failedLines(again.stdout)}\n${again.stderr.slice(-3000)}`);
  const s = summaryOf(again.stdout);
  const changed = again.stdout.split("\n").filter((l) => l.includes('"status":"changed"'));
  assert.equal(s?.changed, 0, `re-run changed: ${changed.join("\n")}`);
  process.stderr.write(`# no-op re-run: ${(again.ms / 1000).toFixed(1)} s\n`);
  // etcd hosts are not taken out of a running cluster: refused, exit 2, nothing changed.
  const fewer = await kubeprov(home, ["up", "--name", NAME, "--etcd-nodes", "2", "--control-planes", "2", "--nodes", "3", "--no-kubeconfig"]);
  assert.equal(fewer.code, 2, fewer.stderr);
  assert.match(fewer.stderr, /has 3 external etcd host\(s\); removing etcd hosts is not supported/);
});

test("status lists the external etcd members with their leader; a snapshot comes from an etcd host", async () => {
  const st = await kubeprov(home, ["status", "--name", NAME, "-o", "json"], 120_000);
  assert.equal(st.code, 0, st.stdout + st.stderr);
  const doc = JSON.parse(st.stdout) as { cluster: { state: string }; hosts: Array<{ name: string; state: string; components?: Record<string, { health: string }>; etcdMembers?: Array<{ name: string; leader?: boolean }> }> };
  assert.equal(doc.cluster.state, "Running");
  for (const e of ETCDS) {
    const h = doc.hosts.find((x) => x.name === e)!;
    assert.equal(h.state, "Running", JSON.stringify(h));
    assert.deepEqual(Object.keys(h.components ?? {}), ["etcd"]);
    assert.deepEqual((h.etcdMembers ?? []).map((m) => m.name).sort(), ETCDS);
    assert.equal((h.etcdMembers ?? []).filter((m) => m.leader).length, 1, JSON.stringify(h.etcdMembers));
  }
  for (const cp of CPS) assert.equal(doc.hosts.find((x) => x.name === cp)?.components?.etcd, undefined, "no etcd component on a control plane");
  const text = await kubeprov(home, ["status", "--name", NAME], 120_000);
  assert.match(text.stdout, /etcd members: .*\(leader\)/);

  const file = join(home, "snap.db");
  const save = await kubeprov(home, ["etcd", "snapshot", "save", file, "--name", NAME], 120_000);
  assert.equal(save.code, 0, save.stderr);
  assert.match(save.stdout, new RegExp(`from ${ETCDS[0]}\\b`));
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const restore = await kubeprov(home, ["etcd", "snapshot", "restore", file, "--name", NAME, "--force"]);
  assert.equal(restore.code, 2, restore.stderr);
  assert.match(restore.stderr, /its own hosts \(role etcd/);
  assert.ok(existsSync(file));
});

test("one etcd host stopped: the API stays writable (2 of 3 members) and status says Degraded", async () => {
  const stop = await execa("docker", ["stop", ETCDS[2]], { reject: false });
  assert.equal(stop.exitCode, 0, String(stop.stderr));
  const ms = await waitFor(async () => (await kubectl(kubeconfig, ["create", "configmap", "written-with-3-of-4", "--from-literal=k=v"])).code === 0, 60_000, 1000);
  assert.notEqual(ms, -1, "the API did not accept a write with 2 of 3 etcd members");
  const read = await kubectl(kubeconfig, ["get", "configmap", "written-with-3-of-4", "-o", "jsonpath={.data.k}"]);
  assert.equal(read.stdout, "v", read.stderr);
  const st = await kubeprov(home, ["status", "--name", NAME, "-o", "json"], 120_000);
  assert.equal(st.code, 1, st.stderr);
  const doc = JSON.parse(st.stdout) as { cluster: { state: string }; hosts: Array<{ name: string; state: string }> };
  assert.equal(doc.cluster.state, "Degraded");
  assert.equal(doc.hosts.find((h) => h.name === ETCDS[2])?.state, "Stopped");
  await assertVotingMembers(ETCDS[0], ETCDS);
});
