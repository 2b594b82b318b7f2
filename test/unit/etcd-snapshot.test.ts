// etcd snapshots without hosts: the integrity hash check against snapshots a real etcd (the bundle's,
// on loopback) saved with etcdctl, damaged and truncated copies refused with exit 2 before anything
// else, the atomic 0600 write, the restore scripts (shell syntax, the one-member cluster they
// restore), and the restore plan as a task graph.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../helpers/sshd.js";
import { DEFAULT_KUBERNETES_VERSION } from "../../provisioner/constants.js";
import { bundleDir } from "../../provisioner/paths.js";
import { UsageError } from "../../provisioner/errors.js";
import { parseClusterText } from "../../provisioner/spec/load.js";
import type { Host } from "../../provisioner/engine/task.js";
import { createRunContext } from "../../provisioner/engine/context.js";
import { MemoryReporter } from "../../provisioner/events.js";
import { validateTaskGraph } from "../../provisioner/engine/runner.js";
import { parseSnapshotStatus, readCheckedSnapshot, snapshotIntegrity, writeCheckedSnapshot } from "../../provisioner/etcd/snapshot-file.js";
import { snapshotSaveScript } from "../../provisioner/etcd/snapshot-save.js";
import {
  restoreDataScript,
  restoreSetAsideScript,
  restoreStamp,
  restoreStopScript,
  RESTORE_DATA_TASK,
  RESTORE_SET_ASIDE_TASK,
  RESTORE_STOP_TASK,
} from "../../provisioner/tasks/etcdrestore.js";
import { restorePlan } from "../../provisioner/plan/restore.js";

const BIN = join(bundleDir(DEFAULT_KUBERNETES_VERSION), "bin");
const haveEtcd = existsSync(join(BIN, "etcd")) && existsSync(join(BIN, "etcdutl"));
const noEtcd = !haveEtcd && "the bundle has no etcd/etcdutl";
const dir = mkdtempSync(join(tmpdir(), "kpt-snap-"));
let etcd: ChildProcess | undefined;
let saved = "";

const withHash = (body: Buffer) => Buffer.concat([body, createHash("sha256").update(body).digest()]);

before(async () => {
  if (!haveEtcd) return;
  const [client, peer, metrics] = [await freePort(), await freePort(), await freePort()];
  etcd = spawn(join(BIN, "etcd"), [
    "--name=s1",
    `--data-dir=${join(dir, "data")}`,
    `--listen-client-urls=http://127.0.0.1:${client}`,
    `--advertise-client-urls=http://127.0.0.1:${client}`,
    `--listen-peer-urls=http://127.0.0.1:${peer}`,
    `--initial-advertise-peer-urls=http://127.0.0.1:${peer}`,
    `--initial-cluster=s1=http://127.0.0.1:${peer}`,
    `--listen-metrics-urls=http://127.0.0.1:${metrics}`,
  ], { stdio: "ignore" });
  const ctl = (args: string[]) => spawnSync(join(BIN, "etcdctl"), [`--endpoints=http://127.0.0.1:${client}`, "--dial-timeout=2s", ...args], { encoding: "utf8" });
  for (let i = 0; i < 150 && ctl(["endpoint", "health"]).status !== 0; i++) await new Promise((r) => setTimeout(r, 200));
  for (let i = 0; i < 20; i++) assert.equal(ctl(["put", `/k/${i}`, `value-${i}`]).status, 0);
  saved = join(dir, "saved.db");
  const r = ctl(["snapshot", "save", saved]);
  assert.equal(r.status, 0, r.stderr);
});

after(() => {
  etcd?.kill();
  rmSync(dir, { recursive: true, force: true });
});

test("integrity hash: whole, damaged, without hash, truncated, empty", () => {
  const body = Buffer.alloc(1024, 7);
  assert.deepEqual(snapshotIntegrity(withHash(body)), { ok: true });
  const damaged = withHash(body);
  damaged[100] ^= 1;
  assert.match((snapshotIntegrity(damaged) as { why: string }).why, /does not match/);
  assert.match((snapshotIntegrity(body) as { why: string }).why, /no integrity hash/);
  assert.match((snapshotIntegrity(withHash(body).subarray(0, 1000)) as { why: string }).why, /truncated/);
  assert.match((snapshotIntegrity(Buffer.alloc(0)) as { why: string }).why, /empty/);
});

test("etcdutl snapshot status JSON parses", () => {
  assert.deepEqual(parseSnapshotStatus('{"hash":156383568,"revision":2,"totalKey":1,"totalSize":20480,"version":"3.7.0"}\n'), {
    hash: 156383568,
    revision: 2,
    totalKey: 1,
    totalSize: 20480,
    version: "3.7.0",
  });
  assert.throws(() => parseSnapshotStatus('{"revision":2}'), /no hash/);
});

test("a snapshot saved by etcdctl passes; damaged, truncated and missing copies are refused with exit 2", { skip: noEtcd }, async () => {
  const etcdutl = join(BIN, "etcdutl");
  const ok = await readCheckedSnapshot(saved, etcdutl);
  assert.ok(ok.status.revision >= 21 && ok.status.totalKey === 20, JSON.stringify(ok.status));
  const bytes = readFileSync(saved);
  // A flipped byte in the middle: etcdutl snapshot status alone may not notice, the hash does.
  const damaged = Buffer.from(bytes);
  damaged[Math.floor(bytes.length / 2)] ^= 0xff;
  writeFileSync(join(dir, "damaged.db"), damaged);
  const truncated = bytes.subarray(0, 4096 + 32);
  writeFileSync(join(dir, "truncated.db"), truncated);
  // A right-sized file whose hash matches but that is no database: etcdutl refuses it.
  writeFileSync(join(dir, "garbage.db"), withHash(Buffer.alloc(65536, 0x41)));
  for (const [name, says] of [
    ["damaged.db", /integrity hash does not match/],
    ["truncated.db", /integrity hash does not match|truncated/],
    ["garbage.db", /refused by etcdutl snapshot status: Error: /],
    ["missing.db", /no such file/],
  ] as const) {
    await assert.rejects(readCheckedSnapshot(join(dir, name), etcdutl), (e: unknown) => {
      assert.ok(e instanceof UsageError, String(e));
      assert.equal(e.exitCode, 2);
      assert.match(e.message, says);
      return true;
    }, name);
  }
});

test("a saved snapshot is written atomically with mode 0600 whatever the umask; a bad one never lands", { skip: noEtcd }, async () => {
  const etcdutl = join(BIN, "etcdutl");
  const out = join(dir, "out", "copy.db");
  spawnSync("mkdir", ["-p", join(dir, "out")]);
  const old = process.umask(0);
  try {
    const st = await writeCheckedSnapshot(out, readFileSync(saved), etcdutl);
    assert.equal(st.totalKey, 20);
  } finally {
    process.umask(old);
  }
  assert.equal(statSync(out).mode & 0o777, 0o600);
  assert.deepEqual(readFileSync(out), readFileSync(saved));
  const bad = Buffer.from(readFileSync(saved));
  bad[200] ^= 0xff;
  await assert.rejects(writeCheckedSnapshot(join(dir, "out", "bad.db"), bad, etcdutl), /unusable: its integrity hash does not match/);
  assert.deepEqual(readdirSync(join(dir, "out")), ["copy.db"], "no temp file and no bad snapshot left");
});

const clusterText = `apiVersion: kubeprov/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  hosts:
  - {name: cp1, address: 10.213.0.10, roles: [control-plane]}
  - {name: cp2, address: 10.213.0.11, roles: [control-plane]}
  - {name: w1, address: 10.213.0.20, roles: [worker]}
`;

function ctx() {
  const cluster = parseClusterText(clusterText, "demo.yaml");
  const hosts: Host[] = cluster.spec.hosts.map((spec) => ({ name: spec.name, address: spec.address, nodeIP: spec.address, roles: spec.roles, spec, transport: {} as Host["transport"] }));
  return createRunContext({ cluster, hosts, reporter: new MemoryReporter() });
}

test("restore scripts: valid shell; the first control plane restores its own one-member cluster", () => {
  const c = ctx();
  const stamp = restoreStamp(new Date("2026-12-04T13:45:00.123Z"));
  assert.equal(stamp, "20261204T134500Z");
  const data = restoreDataScript(c.hosts[0], "/var/lib/kubeprov/etcd-snapshots/restore-x.db", stamp);
  assert.match(data, /--name 'cp1'/);
  assert.match(data, /--initial-cluster 'cp1=https:\/\/10\.213\.0\.10:2380'/);
  assert.match(data, /--initial-advertise-peer-urls 'https:\/\/10\.213\.0\.10:2380'/);
  assert.match(data, /--bump-revision 1000000000 --mark-compacted/);
  assert.match(data, /aside='\/var\/lib\/etcd\.before-restore-20261204T134500Z'/);
  for (const script of [data, restoreStopScript(c.hosts[0], stamp), restoreSetAsideScript(stamp), snapshotSaveScript("/var/lib/kubeprov/etcd-snapshots/save-x.db")]) {
    const r = spawnSync("sh", ["-n"], { input: script, encoding: "utf8" });
    assert.equal(r.status, 0, `${r.stderr}\n${script}`);
    assert.doesNotMatch(script, /\{\{/);
  }
});

test("restore plan: after the binaries, before everything that starts etcd or joins a member", () => {
  const tasks = restorePlan({ snapshot: Buffer.alloc(0), stamp: "s", describe: "d" });
  const facts = { name: "facts/gather", phase: "facts", description: "", hosts: () => [], check: async () => ({ needed: false }), apply: async () => {} };
  assert.doesNotThrow(() => validateTaskGraph([facts, ...tasks], ["facts/gather"]));
  const byName = new Map(tasks.map((t) => [t.name, t]));
  assert.ok(byName.get(RESTORE_STOP_TASK)!.after!.includes("prepare/binaries"));
  for (const name of ["etcd/local", "control-plane/kube-apiserver", "control-plane-join/etcd-member-add", "control-plane-join/etcd", "wait-control-plane/readyz"]) {
    const t = [...byName.values()].find((x) => x.name === name || x.name.startsWith(name));
    assert.ok(t, name);
    assert.ok(t.after!.includes(RESTORE_DATA_TASK) && t.after!.includes(RESTORE_SET_ASIDE_TASK), `${t.name} waits for the restore`);
  }
  assert.ok(!(byName.get("preflight/checks")!.after ?? []).includes(RESTORE_DATA_TASK));
  const c = ctx();
  assert.deepEqual(byName.get(RESTORE_STOP_TASK)!.hosts(c).map((h) => h.name), ["cp1", "cp2"]);
  assert.deepEqual(byName.get(RESTORE_DATA_TASK)!.hosts(c).map((h) => h.name), ["cp1"]);
  assert.deepEqual(byName.get(RESTORE_SET_ASIDE_TASK)!.hosts(c).map((h) => h.name), ["cp2"]);
});

test("the CLI: restore of a damaged snapshot exits 2 naming it, a good one without --force and without a terminal is refused (exit 2); save checks its target first", { skip: noEtcd }, () => {
  // The hosts are never contacted: both refusals come before any connection (nothing listens there).
  const file = join(dir, "cluster.yaml");
  writeFileSync(file, clusterText.replace(/address: 10\.213\.0\.(\d+)/g, "address: 127.0.0.$1, ssh: {port: 1}"));
  const bin = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "bin", "kubeprov.js");
  const cli = (args: string[]) => spawnSync(process.execPath, [bin, ...args], { encoding: "utf8", timeout: 60_000, env: { ...process.env, CI: "1" }, stdio: ["pipe", "pipe", "pipe"] });
  const bad = Buffer.from(readFileSync(saved));
  bad[300] ^= 0xff;
  writeFileSync(join(dir, "bad-cli.db"), bad);
  const d = cli(["etcd", "snapshot", "restore", join(dir, "bad-cli.db"), "-f", file, "--force"]);
  assert.equal(d.status, 2, d.stderr);
  assert.match(d.stderr, /bad-cli\.db is refused: its integrity hash does not match/);
  const n = cli(["etcd", "snapshot", "restore", saved, "-f", file]);
  assert.equal(n.status, 2, n.stderr);
  assert.match(n.stderr, /revision \d+, 20 keys/);
  assert.match(n.stderr, /pass --force to confirm/);
  // save: a missing target directory is refused before any host is asked; unreachable control
  // planes (closed port on loopback) are each named, exit 1, and no file is written.
  const nodir = cli(["etcd", "snapshot", "save", join(dir, "no-such-dir", "x.db"), "-f", file]);
  assert.equal(nodir.status, 2, nodir.stderr);
  assert.match(nodir.stderr, /cannot write .*x\.db: its directory does not exist/);
  const down = cli(["etcd", "snapshot", "save", join(dir, "never.db"), "-f", file]);
  assert.equal(down.status, 1, down.stderr);
  assert.match(down.stderr, /no control plane gave an etcd snapshot \(cp1, cp2\)/);
  assert.ok(!existsSync(join(dir, "never.db")));
});
