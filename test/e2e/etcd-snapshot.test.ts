// `kubeprov etcd snapshot save|restore` on a real HA cluster (3 control planes, stacked etcd):
// a snapshot is saved locally (mode 0600, accepted by etcdutl), a damaged one is refused before any
// host changes, and after two of the three control planes lost their etcd data (quorum gone: writes
// fail) the restore brings the cluster back to the snapshot: the API is ready, what was written
// before the snapshot is there and what came after is not, etcd has three voting members again and
// takes writes. One cluster for the whole file.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { assertVotingMembers, dockerCleanup, ETCDCTL, kubectl, kubeprov, onNode, removeTestCluster, waitFor } from "../helpers/cluster-e2e.js";
import { bundleDir } from "../../provisioner/paths.js";
import { DEFAULT_KUBERNETES_VERSION } from "../../provisioner/constants.js";

const NAME = "kpt-etcdsnap";
const CPS = [`${NAME}-control-plane`, `${NAME}-control-plane2`, `${NAME}-control-plane3`];
const home = mkdtempSync(join(tmpdir(), "kpt-etcdsnap-"));
const kubeconfig = join(home, "admin.conf");
const snapshot = join(home, "backup", "etcd.db");
const ETCDUTL = join(bundleDir(DEFAULT_KUBERNETES_VERSION), "bin", "etcdutl");

before(async () => {
  await dockerCleanup(NAME);
  const up = await kubeprov(home, ["up", "--name", NAME, "--control-planes", "3", "--nodes", "3", "--no-kubeconfig", "-o", "json"], 15 * 60_000);
  assert.equal(up.code, 0, `up failed:\n${up.stdout.split("\n").filter((l) => l.includes('"failed"')).join("\n")}\n${up.stderr.slice(-4000)}`);
  process.stderr.write(`# up --control-planes 3 --nodes 3: ${(up.ms / 1000).toFixed(1)} s\n`);
  const kc = await kubeprov(home, ["kubeconfig", "--name", NAME]);
  assert.equal(kc.code, 0, kc.stderr);
  writeFileSync(kubeconfig, kc.stdout, { mode: 0o600 });
  await execa("mkdir", ["-p", join(home, "backup")]);
});

after(async () => {
  await removeTestCluster(home, NAME);
});

/** Creates a ConfigMap, trying again for up to 60 s (one API request can time out on a loaded machine). */
async function createConfigMap(name: string): Promise<void> {
  let last = "";
  const ms = await waitFor(async () => {
    const r = await kubectl(kubeconfig, ["create", "configmap", name, "-n", "default", "--from-literal=k=v"]);
    last = r.stderr;
    // A try that timed out on the client may still have been written.
    return r.code === 0 || /AlreadyExists/.test(r.stderr);
  }, 60_000, 2000);
  assert.notEqual(ms, -1, `kubectl create configmap ${name}: ${last}`);
}

/** Whether a ConfigMap exists: found or NotFound, asking again for up to 60 s while the API does not answer. */
async function configMapExists(name: string): Promise<boolean> {
  let found: boolean | undefined;
  let last = "";
  await waitFor(async () => {
    const r = await kubectl(kubeconfig, ["get", "configmap", name, "-n", "default", "-o", "name"]);
    last = r.stderr;
    if (r.code === 0) found = true;
    else if (/NotFound/.test(r.stderr)) found = false;
    return found !== undefined;
  }, 60_000, 2000);
  assert.notEqual(found, undefined, `kubectl get configmap ${name}: ${last}`);
  return found!;
}

test("etcd snapshot save: a local file with mode 0600 that etcdutl accepts; nothing left on the host", async () => {
  await createConfigMap("before-snapshot");
  const r = await kubeprov(home, ["etcd", "snapshot", "save", snapshot, "--name", NAME]);
  process.stderr.write(`# etcd snapshot save: ${(r.ms / 1000).toFixed(1)} s\n`);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`saved .* from ${CPS[0]} .*revision \\d+, \\d+ keys`));
  assert.equal(statSync(snapshot).mode & 0o777, 0o600);
  const st = await execa(ETCDUTL, ["snapshot", "status", snapshot, "-w", "json"], { reject: false });
  assert.equal(st.exitCode, 0, String(st.stderr));
  const status = JSON.parse(String(st.stdout)) as { revision: number; totalKey: number };
  assert.ok(status.revision > 0 && status.totalKey > 50, String(st.stdout));
  const left = await onNode(CPS[0], "stat -c %a /var/lib/kubeprov/etcd-snapshots && ls -A /var/lib/kubeprov/etcd-snapshots");
  assert.equal(left.code, 0, left.stderr);
  assert.equal(left.stdout.trim(), "700", `the host keeps no snapshot copy: ${left.stdout}`);
});

test("etcd snapshot restore refuses a damaged or missing file (exit 2) and changes nothing", async () => {
  const damaged = join(home, "damaged.db");
  const bytes = readFileSync(snapshot);
  bytes[Math.floor(bytes.length / 2)] ^= 0xff;
  writeFileSync(damaged, bytes, { mode: 0o600 });
  const r = await kubeprov(home, ["etcd", "snapshot", "restore", damaged, "--name", NAME, "--force"]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /damaged\.db is refused: its integrity hash does not match/);
  const truncated = join(home, "truncated.db");
  writeFileSync(truncated, bytes.subarray(0, 4096 + 32), { mode: 0o600 });
  const t = await kubeprov(home, ["etcd", "snapshot", "restore", truncated, "--name", NAME, "--force"]);
  assert.equal(t.code, 2, t.stderr);
  assert.match(t.stderr, /truncated\.db is refused/);
  const m = await kubeprov(home, ["etcd", "snapshot", "restore", join(home, "nope.db"), "--name", NAME, "--force"]);
  assert.equal(m.code, 2, m.stderr);
  assert.match(m.stderr, /nope\.db: no such file/);
  // Nothing was touched: etcd still has its three members and no data directory was moved aside.
  for (const cp of CPS) {
    const kept = await onNode(cp, "ls -d /var/lib/etcd.before-restore-* 2>/dev/null | wc -l; test -e /etc/kubernetes/manifests/etcd.yaml && echo manifest");
    assert.equal(kept.stdout.trim(), "0\nmanifest", `${cp}: ${kept.stdout}`);
  }
  const list = await onNode(CPS[0], `${ETCDCTL} member list -w simple`);
  assert.equal(list.stdout.trim().split("\n").length, 3, list.stdout + list.stderr);
});

test("after quorum loss, etcd snapshot restore brings the cluster back to the snapshot", async () => {
  await createConfigMap("after-snapshot");

  // Two of the three control planes lose their etcd data and go down: etcd has no quorum.
  for (const cp of CPS.slice(1)) {
    const rm = await onNode(cp, "rm -rf /var/lib/etcd/member");
    assert.equal(rm.code, 0, rm.stderr);
  }
  await execa("docker", ["stop", "--time", "30", ...CPS.slice(1)]);
  const put = await onNode(CPS[0], `${ETCDCTL} put /kubeprov-test/probe x`);
  assert.notEqual(put.code, 0, `etcd still takes writes: ${put.stdout}`);
  const write = await kubectl(kubeconfig, ["create", "configmap", "during-outage", "-n", "default", "--from-literal=k=v"], 40_000);
  assert.notEqual(write.code, 0, `the API still takes writes: ${write.stdout}`);

  // What an operator does: start the machines again (restore needs every control plane reachable),
  // then restore.
  await execa("docker", ["start", ...CPS.slice(1)]);
  for (const cp of CPS.slice(1)) {
    const ms = await waitFor(async () => (await onNode(cp, "systemctl is-active ssh")).stdout.trim() === "active", 90_000, 1000);
    assert.notEqual(ms, -1, `${cp}: sshd not active within 90 s`);
  }
  const r = await kubeprov(home, ["etcd", "snapshot", "restore", snapshot, "--name", NAME, "--force", "-o", "json"], 15 * 60_000);
  process.stderr.write(`# etcd snapshot restore: ${(r.ms / 1000).toFixed(1)} s\n`);
  for (const l of r.stdout.split("\n").filter((x) => x.includes('"phase":"etcd-restore"') && x.includes('"type":"task"'))) {
    const e = JSON.parse(l) as { host: string; task: string; status: string; reason?: string; durationMs: number };
    process.stderr.write(`#   ${e.task} ${e.host}: ${e.status} in ${(e.durationMs / 1000).toFixed(1)} s${e.reason ? ` (${e.reason})` : ""}\n`);
  }
  if (r.code !== 0) {
    // What the control planes ran at that point, for the failure message.
    const seen = await Promise.all(
      CPS.map(async (cp) => {
        const o = await onNode(cp, "crictl ps -a 2>&1 | head -20; pgrep -l -x 'etcd|kube-apiserver'");
        return `--- ${cp} (docker exec exit ${o.code}):\n${o.stdout}${o.stderr}`;
      }),
    );
    assert.fail(`restore failed:\n${r.stdout.split("\n").filter((l) => l.includes('"failed"')).join("\n")}\n${r.stderr.slice(-4000)}\n${seen.join("\n")}`);
  }

  const ready = await waitFor(async () => (await kubectl(kubeconfig, ["get", "--raw", "/readyz"])).stdout.trim() === "ok", 60_000, 1000);
  assert.notEqual(ready, -1, "/readyz is not ok within 60 s of the restore");
  assert.equal(await configMapExists("before-snapshot"), true, "the ConfigMap written before the snapshot is back");
  assert.equal(await configMapExists("after-snapshot"), false, "the ConfigMap written after the snapshot is gone");

  await assertVotingMembers(CPS[0], CPS);

  await createConfigMap("after-restore");
  assert.equal(await configMapExists("after-restore"), true);

  // Each control plane's old data is kept aside, root-only; no snapshot copy stays on the first one.
  // (The other two lost theirs: they have something to keep only if etcd wrote there since.)
  const kept = await onNode(CPS[0], "stat -c %a /var/lib/etcd.before-restore-*");
  assert.equal(kept.stdout.trim(), "700", `${CPS[0]}: ${kept.stdout}${kept.stderr}`);
  for (const cp of CPS.slice(1)) {
    const k = await onNode(cp, "for d in /var/lib/etcd.before-restore-*; do [ -e \"$d\" ] && stat -c %a \"$d\"; done; true");
    assert.match(k.stdout.trim(), /^(700)?$/, `${cp}: ${k.stdout}`);
  }
  const left = await onNode(CPS[0], "ls -A /var/lib/kubeprov/etcd-snapshots");
  assert.equal(left.stdout.trim(), "", left.stdout);
});
