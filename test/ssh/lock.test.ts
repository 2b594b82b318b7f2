// The cluster lock over real SSH: a second run is refused naming host and holder, a stale lock is
// taken over, the lock is renewed while held, and all-or-nothing acquisition.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { spawn } from "node:child_process";
import { hostname, tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { clusterSchema, type Cluster } from "../../provisioner/spec/schema.js";
import { connectHosts, closeHosts } from "../../provisioner/engine/hosts.js";
import { acquireLock, parseLockFile } from "../../provisioner/engine/lock.js";
import { HostError } from "../../provisioner/errors.js";
import type { Host } from "../../provisioner/engine/task.js";
import { startFleet, type SshFleet } from "../helpers/sshd.js";

let fleet: SshFleet;
let cluster: Cluster;
let hosts: Host[];
let dir: string;

before(async () => {
  fleet = await startFleet(2);
  cluster = clusterSchema.parse(fleet.clusterInput());
  hosts = await connectHosts(cluster);
  dir = mkdtempSync(join(tmpdir(), "kpt-lock-"));
});
after(async () => {
  if (hosts) await closeHosts(hosts);
  await fleet?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

// Every sshd here serves the same filesystem, so each "host" gets its own lock path, as separate
// machines would have.
const perHost = (name: string) => (h: Host) => join(dir, name, h.name, "kubeprov.lock");

test("a second run is refused with the host and the holder named; nothing changed; release frees it", async () => {
  const path = perHost("contention");
  // The first run is another process (another kubeprov), holding the lock until told to stop.
  const dist = resolve("dist");
  const script = `
    import { clusterSchema } from ${JSON.stringify(join(dist, "provisioner/spec/schema.js"))};
    import { connectHosts, closeHosts } from ${JSON.stringify(join(dist, "provisioner/engine/hosts.js"))};
    import { acquireLock } from ${JSON.stringify(join(dist, "provisioner/engine/lock.js"))};
    import { join } from "node:path";
    const cluster = clusterSchema.parse(JSON.parse(process.env.KPT_CLUSTER));
    const hosts = await connectHosts(cluster);
    const lock = await acquireLock(hosts, "alice@workstation (kubeprov apply)", { path: (h) => join(process.env.KPT_DIR, "contention", h.name, "kubeprov.lock") });
    console.log("locked");
    process.stdin.once("data", async () => { await lock.release(); await closeHosts(hosts); console.log("released"); process.exit(0); });
  `;
  const first = spawn(process.execPath, ["--input-type=module", "-e", script], {
    env: { ...process.env, KPT_CLUSTER: JSON.stringify(fleet.clusterInput()), KPT_DIR: dir },
    stdio: ["pipe", "pipe", "inherit"],
  });
  try {
    await new Promise<void>((res, rej) => {
      first.stdout!.on("data", (d) => d.toString().includes("locked") && res());
      first.once("exit", (c) => rej(new Error(`first run exited ${c}`)));
    });
    const before = hosts.map((h) => readFileSync(path(h), "utf8"));
    await assert.rejects(
      () => acquireLock(hosts, "bob@laptop (kubeprov apply)", { path }),
      (e: unknown) => {
        assert.ok(e instanceof HostError);
        assert.equal(e.exitCode, 1);
        assert.match(e.message, /^node1 \[lock\]: the cluster is locked by another kubeprov run: alice@workstation \(kubeprov apply\) \(pid \d+ on \S+ since \S+\)/);
        assert.match(e.message, /nothing was changed/);
        assert.ok(e.message.includes(`pid ${first.pid}`));
        assert.match(e.details ?? "", /^node1: .* held by alice@workstation/m);
        return true;
      },
    );
    assert.deepEqual(
      hosts.map((h) => readFileSync(path(h), "utf8")),
      before,
      "the holder's lock files are untouched",
    );
    first.stdin!.write("go\n");
    await new Promise((r) => first.once("exit", r));
    assert.ok(hosts.every((h) => !existsSync(path(h))), "released on every host");
    const lock = await acquireLock(hosts, "bob@laptop (kubeprov apply)", { path });
    assert.equal(parseLockFile(readFileSync(path(hosts[0]), "utf8")).owner, "bob@laptop (kubeprov apply)");
    await lock.release();
  } finally {
    if (first.exitCode === null) first.kill();
  }
});

test("a stale lock is taken over; a renewed one is not; release removes only our own lock", async () => {
  const path = perHost("stale");
  const lockA = await acquireLock(hosts, "run-a", { path, staleMs: 2000, touchMs: 300 });
  // Renewed every 300 ms: after 3 s it is still fresh, so run B is refused.
  await new Promise((r) => setTimeout(r, 3000));
  const m = statSync(path(hosts[0])).mtimeMs;
  assert.ok(Date.now() - m < 1500, "lock was renewed");
  await assert.rejects(() => acquireLock(hosts, "run-b", { path, staleMs: 2000 }), /locked by another kubeprov run: run-a/);
  // Run A dies without releasing: make the lock look 60 s old.
  await lockA.release();
  for (const h of hosts) {
    writeFileSync(path(h), "kubeprov-lock\nid=dead-run\nowner=run-a\npid=999999\nmachine=gone\nsince=2026-01-01T00:00:00Z\n");
    const old = new Date(Date.now() - 60_000);
    utimesSync(path(h), old, old);
  }
  const lockB = await acquireLock(hosts, "run-b", { path, staleMs: 2000 });
  assert.deepEqual(
    lockB.takenOver.map((t) => [t.host, t.previous.owner, t.previous.id]),
    [
      ["node1", "run-a", "dead-run"],
      ["node2", "run-a", "dead-run"],
    ],
  );
  assert.equal(parseLockFile(readFileSync(path(hosts[1]), "utf8")).owner, "run-b");
  // A release by someone else's lock object leaves run B's lock alone.
  await lockA.release();
  const stale = await acquireLock([hosts[0]], "run-c", { path: join(dir, "other.lock") });
  await stale.release();
  assert.equal(parseLockFile(readFileSync(path(hosts[0]), "utf8")).owner, "run-b");
  await lockB.release();
  assert.ok(!existsSync(path(hosts[0])));
});

test("a fresh lock whose holder is a process of this machine that is gone is taken over at once; a live or remote holder's is not", async () => {
  const path = perHost("gone");
  const exited = spawn(process.execPath, ["-e", ""]);
  await new Promise((r) => exited.once("exit", r));
  const alive = spawn(process.execPath, ["-e", "setTimeout(() => {}, 60000)"]);
  const holder = (id: string, pid: number | undefined, machine: string) => `kubeprov-lock\nid=${id}\nowner=killed-run\npid=${pid}\nmachine=${machine}\nsince=2026-01-01T00:00:00Z\n`;
  const writeAll = (text: string) => hosts.forEach((h) => { mkdirSync(dirname(path(h)), { recursive: true }); writeFileSync(path(h), text); });
  try {
    // Just written (fresh by its time), by a process of another machine with that pid: refused.
    writeAll(holder("remote-run", exited.pid, "another-machine"));
    await assert.rejects(() => acquireLock(hosts, "run-d", { path }), /locked by another kubeprov run: killed-run/);
    // A process of this machine that still runs: refused.
    writeAll(holder("live-run", alive.pid, hostname()));
    await assert.rejects(() => acquireLock(hosts, "run-d", { path }), /locked by another kubeprov run: killed-run/);
    // A process of this machine that no longer exists: taken over without waiting.
    writeAll(holder("killed-run", exited.pid, hostname()));
    const lock = await acquireLock(hosts, "run-d", { path });
    assert.deepEqual(lock.takenOver.map((t) => [t.host, t.previous.id]), [["node1", "killed-run"], ["node2", "killed-run"]]);
    assert.equal(parseLockFile(readFileSync(path(hosts[1]), "utf8")).owner, "run-d");
    await lock.release();
  } finally {
    alive.kill();
  }
});

test("all or nothing: when one host is locked, the lock taken on the others is released", async () => {
  const path = perHost("partial");
  const holder = await acquireLock([hosts[1]], "someone-else", { path });
  await assert.rejects(() => acquireLock(hosts, "me", { path }), /node2 \[lock\]: the cluster is locked by another kubeprov run: someone-else/);
  assert.ok(!existsSync(path(hosts[0])), "node1's lock was given back");
  await holder.release();
});

test("two runs racing for a free lock: exactly one wins", async () => {
  const path = perHost("race");
  const results = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => acquireLock(hosts, `racer-${i}`, { path })));
  const winners = results.filter((r) => r.status === "fulfilled");
  assert.equal(winners.length, 1, results.map((r) => (r.status === "rejected" ? String(r.reason) : "won")).join("\n"));
  await (winners[0] as PromiseFulfilledResult<{ release(): Promise<void> }>).value.release();
});
