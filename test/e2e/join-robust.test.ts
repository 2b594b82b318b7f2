// Two ways a control-plane join meets a cluster it did not just make, on one cluster over SSH
// (machines from `up --no-kubernetes`, the first control plane made by `apply -f FILE`):
// 1. a join killed (SIGKILL of kubeprov) the moment its etcd learner appears: the next `apply`
//    converges, and etcd's member list, sampled during both runs and after, never holds a member
//    twice or one that is no host of the file;
//    an etcd member removed by hand while its data stays on the host joins again in one run;
// 2. a second machine with only the cluster file and the SSH credentials (a fresh KUBEPROV_HOME:
//    no admin kubeconfig, no local state) finds the cluster on its hosts: no init again (the CA and
//    the etcd member IDs stay), 0 changed, and it grows the cluster by a control plane.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { assertVotingMembers, dockerCleanup, ETCDCTL, etcdMembers, firstHostsFile, KUBEPROV, kubeprov, onNode, readyNodes, removeTestCluster, sshMachines, summaryOf, type MachineHost, type MachinesFile, waitFor } from "../helpers/cluster-e2e.js";

const NAME = "kpt-jr";
const FIRST = `${NAME}-control-plane`;
const home = mkdtempSync(join(tmpdir(), "kpt-jr-"));
/** The "second machine": its own KUBEPROV_HOME, holding only what an operator carries over. */
const home2 = mkdtempSync(join(tmpdir(), "kpt-jr2-"));
const file = join(home, "cluster.yaml");
const file2 = join(home2, "cluster.yaml");
let hosts: MachineHost[] = [];
let base: MachinesFile;

/** The cluster file with the first n control planes (the endpoint is the first one). */
const clusterText = (n: number, ssh?: Record<string, unknown>) => firstHostsFile(base, hosts, n, ssh);

/** etcd's members by peer URL, sampled while runs go on: a peer URL twice, or one of no host, is a failure. */
const samples: string[] = [];
function checkSample(rows: string[][], allowed: string[]): string | undefined {
  const peers = rows.map((r) => r[3]);
  const twice = peers.filter((p, i) => peers.indexOf(p) !== i);
  if (twice.length) return `peer URL twice: ${twice.join(", ")}`;
  const stranger = peers.filter((p) => !allowed.includes(p));
  if (stranger.length) return `a member of no host: ${stranger.join(", ")}`;
  return undefined;
}
const peerOf = (h: { address: string }) => `https://${h.address}:2380`;

/** Samples the member list on the first control plane until stop() resolves; returns the bad samples. */
function sampleMembers(allowed: string[], onSample?: (rows: string[][]) => void): { stop: () => Promise<string[]> } {
  let running = true;
  const bad: string[] = [];
  const loop = (async () => {
    while (running) {
      const rows = await etcdMembers(FIRST).catch(() => undefined);
      if (rows) {
        samples.push(rows.map((r) => r.join(", ")).join(" | "));
        const why = checkSample(rows, allowed);
        if (why) bad.push(`${why}: ${rows.map((r) => r.join(", ")).join(" | ")}`);
        onSample?.(rows);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  })();
  return {
    stop: async () => {
      running = false;
      await loop;
      return bad;
    },
  };
}

const caHash = async () => (await onNode(FIRST, "sha256sum /etc/kubernetes/pki/ca.crt /etc/kubernetes/pki/etcd/ca.crt")).stdout;
const memberIds = async () => Object.fromEntries((await etcdMembers(FIRST)).map((m) => [m[2], m[0]]));

const failedLines = (stdout: string) => stdout.split("\n").filter((l) => l.includes('"failed"') || l.includes('"level":"error"')).join("\n");

before(async () => {
  await dockerCleanup(NAME);
  ({ base, hosts } = await sshMachines(home, NAME, 3));
  writeFileSync(file, clusterText(1));
  const one = await kubeprov(home, ["apply", "-f", file, "-o", "json"]);
  assert.equal(one.code, 0, failedLines(one.stdout) + one.stderr.slice(-3000));
  process.stderr.write(`# apply of the first control plane (init): ${(one.ms / 1000).toFixed(1)} s\n`);
});

after(async () => {
  await removeTestCluster(home, NAME);
  rmSync(home2, { recursive: true, force: true });
});

test("a control-plane join killed (SIGKILL) once its etcd learner was added: apply again converges, never a member twice", async () => {
  const joiner = hosts[1];
  const allowed = hosts.slice(0, 2).map(peerOf);
  writeFileSync(file, clusterText(2));
  const ca = await caHash();

  // The join runs until etcd lists the new member (a learner), then kubeprov is killed outright:
  // no cleanup, no lock release, whatever the join had done on the host stays.
  const t0 = Date.now();
  const child = execa(process.execPath, [KUBEPROV, "apply", "-f", file, "-o", "json"], {
    reject: false,
    env: { KUBEPROV_HOME: home, KUBECONFIG: join(home, "kubeconfig"), CI: "1" },
    stdin: "ignore",
  });
  let learner: string[] | undefined;
  const during = sampleMembers(allowed, (rows) => {
    const me = rows.find((r) => r[3] === peerOf(joiner));
    if (me && !learner) {
      learner = me;
      child.kill("SIGKILL");
    }
  });
  const killed = await child;
  const badDuring = await during.stop();
  assert.ok(learner, `kubeprov ended (exit ${killed.exitCode}) before etcd listed ${joiner.name}: ${failedLines(String(killed.stdout))}${String(killed.stderr).slice(-2000)}`);
  assert.equal(killed.signal, "SIGKILL");
  assert.equal(learner[5], "true", `the new member is a learner when it first appears: ${learner.join(", ")}`);
  const what = await onNode(joiner.name, "ls /etc/kubernetes/manifests; ls -A /var/lib/etcd; pgrep -x etcd >/dev/null && echo etcd-running || echo etcd-not-running");
  process.stderr.write(`# killed ${((Date.now() - t0) / 1000).toFixed(1)} s into the join; member then: ${learner.join(", ")}; on ${joiner.name}: ${what.stdout.trim().replace(/\n/g, " ")}\n`);

  // An operator runs apply again at once.
  const rerunSampler = sampleMembers(allowed);
  const rerun = await kubeprov(home, ["apply", "-f", file, "-o", "json"]);
  const badRerun = await rerunSampler.stop();
  assert.equal(rerun.code, 0, failedLines(rerun.stdout) + rerun.stderr.slice(-3000));
  process.stderr.write(`# apply after the killed join: ${(rerun.ms / 1000).toFixed(1)} s; ${samples.length} member lists sampled\n`);
  assert.deepEqual([...badDuring, ...badRerun], []);

  await assertVotingMembers(FIRST, [FIRST, joiner.name]);
  // The learner of the killed run is the member that was promoted: it was neither re-added nor replaced.
  assert.equal((await memberIds())[joiner.name], learner[0]);
  assert.equal(await caHash(), ca);
  const kc = await kubeprov(home, ["kubeconfig", "-f", file]);
  writeFileSync(join(home, "admin.conf"), kc.stdout, { mode: 0o600 });
  assert.notEqual(await waitFor(async () => (await readyNodes(join(home, "admin.conf"))) === 2, 150_000, 2000), -1, "not both control planes Ready within 150 s");

  const again = await kubeprov(home, ["apply", "-f", file, "-o", "json"]);
  assert.equal(again.code, 0, again.stderr.slice(-2000));
  assert.equal(summaryOf(again.stdout)?.changed, 0, again.stdout.split("\n").filter((l) => l.includes('"status":"changed"')).join("\n"));
  await assertVotingMembers(FIRST, [FIRST, joiner.name]);
});

test("a member removed from etcd by hand, its data left on the host: apply clears the stale data and joins it again in one run", async () => {
  const joiner = hosts[1];
  const old = (await memberIds())[joiner.name];
  const rm = await onNode(FIRST, `${ETCDCTL} member remove ${old}`);
  assert.equal(rm.code, 0, rm.stderr);
  const left = await onNode(joiner.name, "test -d /var/lib/etcd/member && echo data");
  assert.equal(left.stdout.trim(), "data", "the removed member's data is still on the host");

  const sampler = sampleMembers(hosts.slice(0, 2).map(peerOf));
  const rerun = await kubeprov(home, ["apply", "-f", file, "-o", "json"]);
  const bad = await sampler.stop();
  assert.equal(rerun.code, 0, failedLines(rerun.stdout) + rerun.stderr.slice(-3000));
  process.stderr.write(`# apply re-adding a member removed by hand: ${(rerun.ms / 1000).toFixed(1)} s\n`);
  assert.deepEqual(bad, []);
  await assertVotingMembers(FIRST, [FIRST, joiner.name]);
  assert.notEqual((await memberIds())[joiner.name], old, "a new member, not the removed one");
});

test("a second machine (the cluster file and the SSH key only) finds the cluster on its hosts: 0 changed, no init again, and it grows the cluster", async () => {
  // What an operator carries to another machine: the cluster file and the SSH credentials.
  const ssh = base.spec.ssh as { identityFile: string; knownHostsFile: string };
  mkdirSync(join(home2, "ssh"), { mode: 0o700 });
  const identityFile = join(home2, "ssh", "id_ed25519");
  const knownHostsFile = join(home2, "ssh", "known_hosts");
  copyFileSync(ssh.identityFile, identityFile);
  copyFileSync(ssh.knownHostsFile, knownHostsFile);
  writeFileSync(file2, clusterText(2, { identityFile, knownHostsFile }), { mode: 0o600 });
  const ca = await caHash();
  const ids = await memberIds();

  const noop = await kubeprov(home2, ["apply", "-f", file2, "-o", "json"]);
  assert.equal(noop.code, 0, failedLines(noop.stdout) + noop.stderr.slice(-3000));
  process.stderr.write(`# apply from a second machine, converged cluster: ${(noop.ms / 1000).toFixed(1)} s\n`);
  assert.equal(summaryOf(noop.stdout)?.changed, 0, noop.stdout.split("\n").filter((l) => l.includes('"status":"changed"')).join("\n"));
  assert.equal(await caHash(), ca, "the CAs on the first control plane are unchanged");
  assert.deepEqual(await memberIds(), ids, "the etcd members are the same (no init, no re-add)");

  writeFileSync(file2, clusterText(3, { identityFile, knownHostsFile }), { mode: 0o600 });
  const sampler = sampleMembers(hosts.map(peerOf));
  const grow = await kubeprov(home2, ["apply", "-f", file2, "-o", "json"]);
  const bad = await sampler.stop();
  assert.equal(grow.code, 0, failedLines(grow.stdout) + grow.stderr.slice(-3000));
  process.stderr.write(`# apply from a second machine, + 1 control plane: ${(grow.ms / 1000).toFixed(1)} s\n`);
  assert.deepEqual(bad, []);
  await assertVotingMembers(FIRST, hosts.map((h) => h.name));
  const after3 = await memberIds();
  for (const [n, id] of Object.entries(ids)) assert.equal(after3[n], id, `etcd member ${n} kept its ID`);
  assert.equal(await caHash(), ca);
  // The second machine's admin kubeconfig comes from the hosts too.
  const kc = await kubeprov(home2, ["kubeconfig", "-f", file2]);
  assert.equal(kc.code, 0, kc.stderr);
  writeFileSync(join(home2, "admin.conf"), kc.stdout, { mode: 0o600 });
  assert.notEqual(await waitFor(async () => (await readyNodes(join(home2, "admin.conf"))) === 3, 150_000, 2000), -1, "not all 3 control planes Ready within 150 s");
});
