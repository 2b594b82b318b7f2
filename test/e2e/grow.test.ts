// A cluster file over SSH grows from one control plane to three: machines from `up --no-kubernetes`,
// then `apply -f FILE` with the first control plane only, then the file edited to list all three and
// `apply -f FILE` again. The cluster is read from the hosts (no init again): etcd grows to three
// voting members, one at a time, and a third apply changes nothing.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { dockerCleanup, ETCDCTL, firstHostsFile, kubectl, kubeprov, onNode, readyNodes, removeTestCluster, sshMachines, summaryOf, type MachineHost, type MachinesFile, waitFor } from "../helpers/cluster-e2e.js";

const NAME = "kpt-grow";
const FIRST = `${NAME}-control-plane`;
const home = mkdtempSync(join(tmpdir(), "kpt-grow-"));
const file = join(home, "cluster.yaml");
const kubeconfig = join(home, "admin.conf");
let hosts: MachineHost[] = [];
let base: MachinesFile;

/** The cluster file with the first n control planes, without HA (the endpoint is the first one). */
function writeFile(n: number): void {
  writeFileSync(file, firstHostsFile(base, hosts, n));
}

before(async () => {
  await dockerCleanup(NAME);
  ({ base, hosts } = await sshMachines(home, NAME, 3));
});

after(async () => {
  await removeTestCluster(home, NAME);
});

test("apply -f FILE over SSH: one control plane, then the file lists three and apply joins two, one at a time", async () => {
  writeFile(1);
  const one = await kubeprov(home, ["apply", "-f", file, "-o", "json"]);
  assert.equal(one.code, 0, one.stderr.slice(-3000));
  const kc = await kubeprov(home, ["kubeconfig", "-f", file]);
  writeFileSync(kubeconfig, kc.stdout, { mode: 0o600 });
  assert.equal((await kubectl(kubeconfig, ["get", "--raw", "/readyz"])).stdout.trim(), "ok");

  writeFile(3);
  const grow = await kubeprov(home, ["apply", "-f", file, "-o", "json"]);
  assert.equal(grow.code, 0, grow.stdout.split("\n").filter((l) => l.includes('"failed"')).join("\n") + grow.stderr.slice(-3000));
  process.stderr.write(`# apply growing 1 -> 3 control planes: ${(grow.ms / 1000).toFixed(1)} s\n`);
  // init did not run again on the first control plane: its etcd and control plane were kept.
  const firstChanged = grow.stdout
    .split("\n")
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as { type: string; host?: string; task?: string; status?: string })
    .filter((e) => e.type === "task" && e.host === FIRST && e.status === "changed" && /^(etcd|control-plane)\//.test(e.task ?? ""));
  assert.deepEqual(firstChanged.map((e) => e.task), []);

  const list = await onNode(FIRST, `${ETCDCTL} member list -w simple`);
  const members = list.stdout.trim().split("\n").map((l) => l.split(", "));
  assert.equal(members.length, 3, list.stdout + list.stderr);
  for (const m of members) assert.deepEqual([m[1], m[5]], ["started", "false"], list.stdout);
  const ms = await waitFor(async () => (await readyNodes(kubeconfig)) === 3, 150_000, 2000);
  assert.notEqual(ms, -1, "not all 3 control planes Ready within 150 s");

  const again = await kubeprov(home, ["apply", "-f", file, "-o", "json"]);
  assert.equal(again.code, 0, again.stderr.slice(-2000));
  assert.equal(summaryOf(again.stdout)?.changed, 0, again.stdout.split("\n").filter((l) => l.includes('"status":"changed"')).join("\n"));
  process.stderr.write(`# no-op apply of 3 control planes: ${(again.ms / 1000).toFixed(1)} s\n`);
});

test("apply --prune: the file lists two control planes; the third leaves the cluster (etcd 3 -> 2) and is reset; again changes nothing", async () => {
  const leaver = hosts[2].name;
  writeFile(2);
  // A dry run names the leaver and changes nothing.
  const dry = await kubeprov(home, ["apply", "-f", file, "--prune", "--dry-run", "-o", "json"]);
  assert.equal(dry.code, 0, dry.stderr.slice(-2000));
  const events = (r: string) => r.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { type: string; host?: string; task?: string; status?: string; dryRun?: boolean });
  assert.deepEqual(events(dry.stdout).filter((e) => e.task === "prune/leave-cluster").map((e) => [e.host, e.status, e.dryRun]), [[leaver, "changed", true]]);
  const still = await onNode(FIRST, `${ETCDCTL} member list -w simple`);
  assert.equal(still.stdout.trim().split("\n").length, 3, still.stdout);

  const prune = await kubeprov(home, ["apply", "-f", file, "--prune", "-o", "json"]);
  assert.equal(prune.code, 0, prune.stdout.split("\n").filter((l) => l.includes('"failed"')).join("\n") + prune.stderr.slice(-3000));
  process.stderr.write(`# apply --prune of one control plane (drain, etcd member, Node, reset): ${(prune.ms / 1000).toFixed(1)} s\n`);
  assert.equal(prune.stdout.split("\n").filter((l) => l.includes('"type":"summary"')).length, 1, "one run, one summary");
  assert.ok((summaryOf(prune.stdout)?.changed ?? 0) >= 2, "the removal and the reset are counted");
  const list = await onNode(FIRST, `${ETCDCTL} member list -w simple`);
  assert.deepEqual(list.stdout.trim().split("\n").map((l) => l.split(", ")[2]).sort(), [FIRST, hosts[1].name].sort(), list.stdout);
  const nodes = await kubectl(kubeconfig, ["get", "nodes", "-o", "jsonpath={.items[*].metadata.name}"]);
  assert.deepEqual(nodes.stdout.trim().split(" ").sort(), [FIRST, hosts[1].name].sort());
  // The leaver is reset: no Kubernetes files, no kubelet, no marker of the cluster.
  const left = await onNode(leaver, "ls -A /etc/kubernetes 2>/dev/null; ls -A /var/lib/etcd 2>/dev/null; systemctl is-active kubelet");
  assert.equal(left.stdout.trim(), "inactive", left.stdout);
  assert.equal((await kubectl(kubeconfig, ["get", "--raw", "/readyz"])).stdout.trim(), "ok");

  const again = await kubeprov(home, ["apply", "-f", file, "--prune", "-o", "json"]);
  assert.equal(again.code, 0, again.stderr.slice(-2000));
  assert.equal(summaryOf(again.stdout)?.changed, 0, again.stdout.split("\n").filter((l) => l.includes('"status":"changed"')).join("\n"));
});
