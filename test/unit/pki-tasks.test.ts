// The certs and kubeconfig tasks through the engine's runner, on real files through the real local
// transport. Each "host" has its own root directory (RootedTransport maps kubeadm's absolute paths
// below it), so two control planes and a worker live side by side on this machine.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createRunContext } from "../../provisioner/engine/context.js";
import { runTasks } from "../../provisioner/engine/runner.js";
import type { Host, Task } from "../../provisioner/engine/task.js";
import { preparedKeys } from "../../provisioner/pki/keys.js";
import { MemoryReporter } from "../../provisioner/events.js";
import { certsTasks } from "../../provisioner/tasks/certs.js";
import { kubeconfigTasks } from "../../provisioner/tasks/kubeconfig.js";
import { LocalTransport } from "../../provisioner/transport/local.js";
import type { ExecOptions, ExecResult, Transport, WriteOptions } from "../../provisioner/transport/transport.js";
import { cluster, fingerprint, subject, tmp, verify } from "./pki-support.js";

/** A real LocalTransport whose file paths under /etc/kubernetes live below a per-host root. */
class RootedTransport implements Transport {
  private readonly inner: LocalTransport;
  constructor(
    readonly host: string,
    readonly root: string,
  ) {
    this.inner = new LocalTransport(host);
  }
  private map(p: string): string {
    return p.startsWith("/etc/kubernetes") ? this.root + p : p;
  }
  exec(command: string, opts?: ExecOptions): Promise<ExecResult> {
    return this.inner.exec(command.split("/etc/kubernetes").join(`${this.root}/etc/kubernetes`), opts);
  }
  readFile(path: string): Promise<Buffer | undefined> {
    return this.inner.readFile(this.map(path));
  }
  writeFile(path: string, data: string | Buffer, opts: WriteOptions): Promise<void> {
    return this.inner.writeFile(this.map(path), data, opts);
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

const c = cluster({ controlPlaneEndpoint: "10.213.0.100:6443" });
const root = tmp("tasks");

function hosts(): Host[] {
  return c.spec.hosts.map((h) => ({
    name: h.name,
    address: h.address,
    nodeIP: h.address,
    roles: h.roles,
    spec: h,
    transport: new RootedTransport(h.name, join(root, h.name)),
  }));
}

async function run(dryRun = false) {
  const reporter = new MemoryReporter();
  const ctx = createRunContext({ cluster: c, source: "test.yaml", hosts: hosts(), reporter, dryRun });
  const summary = await runTasks([...certsTasks(), ...kubeconfigTasks()], ctx);
  return { summary, status: Object.fromEntries(summary.results.map((r) => [`${r.task}@${r.host}`, r.status])) };
}

test("dry run on empty hosts: reports the work, writes nothing", async () => {
  const r = await run(true);
  assert.equal(r.summary.failed, 0, JSON.stringify(r.summary.results.filter((x) => x.status === "failed")));
  assert.equal(r.status["certs/pki@cp1"], "changed");
  assert.equal(r.status["certs/pki@w1"], undefined, "workers get no control-plane PKI");
  assert.deepEqual(fingerprint(root), {});
});

test("apply: both control planes get the PKI, sharing the first one's CAs", async () => {
  const r = await run();
  assert.equal(r.summary.failed, 0, JSON.stringify(r.summary.results.filter((x) => x.status === "failed")));
  assert.deepEqual(r.status, {
    "certs/pki@cp1": "changed",
    "certs/pki@cp2": "changed",
    "kubeconfig/control-plane@cp1": "changed",
    "kubeconfig/control-plane@cp2": "changed",
  });
  const f = (h: string, p: string) => join(root, h, "etc/kubernetes", p);
  for (const shared of ["pki/ca.crt", "pki/ca.key", "pki/etcd/ca.key", "pki/front-proxy-ca.crt", "pki/sa.key", "pki/sa.pub"]) {
    assert.deepEqual(readFileSync(f("cp2", shared)), readFileSync(f("cp1", shared)), shared);
  }
  assert.equal(subject(f("cp2", "pki/etcd/server.crt")), "CN=cp2");
  assert.ok(verify(f("cp1", "pki/ca.crt"), f("cp2", "pki/apiserver.crt")).ok);
  assert.match(readFileSync(f("cp2", "scheduler.conf"), "utf8"), /server: https:\/\/10\.213\.0\.11:6443/);
  assert.match(readFileSync(f("cp2", "admin.conf"), "utf8"), /server: https:\/\/10\.213\.0\.100:6443/);
  assert.deepEqual(Object.keys(fingerprint(join(root, "cp1"))).length, 27);
  assert.deepEqual(Object.keys(fingerprint(join(root, "cp2"))).length, 26, "no super-admin.conf on cp2");
});

test("second run: 0 changed, every file byte-identical", async () => {
  const before = fingerprint(root);
  const r = await run();
  assert.equal(r.summary.changed, 0, JSON.stringify(r.summary.results));
  assert.equal(r.summary.failed, 0);
  assert.deepEqual(fingerprint(root), before);
});

test("a lost leaf on cp2 is re-created there only", async () => {
  rmSync(join(root, "cp2/etc/kubernetes/pki/apiserver.crt"));
  const r = await run();
  assert.deepEqual(
    r.summary.results.filter((x) => x.status === "changed").map((x) => `${x.task}@${x.host}`),
    ["certs/pki@cp2"],
  );
});

test("a key made world-readable on cp1 is chmod-ed back by the certs task", async () => {
  const { chmodSync, statSync } = await import("node:fs");
  const key = join(root, "cp1/etc/kubernetes/pki/sa.key");
  chmodSync(key, 0o644);
  const r = await run();
  const changed = r.summary.results.filter((x) => x.status === "changed");
  assert.deepEqual(changed.map((x) => `${x.task}@${x.host}`), ["certs/pki@cp1"]);
  assert.match(changed[0]!.reason ?? "", /chmod 600 .*sa\.key \(was 644\)/);
  assert.equal(statSync(key).mode & 0o777, 0o600);
  assert.equal((await run()).summary.changed, 0);
});

test("keys generated ahead: a fresh PKI's run generates exactly the keys it writes, most of them ahead", async () => {
  const fresh = tmp("tasks-ahead");
  const reporter = new MemoryReporter();
  const ctx = createRunContext({
    cluster: c,
    source: "test.yaml",
    hosts: c.spec.hosts.map((h) => ({ name: h.name, address: h.address, nodeIP: h.address, roles: h.roles, spec: h, transport: new RootedTransport(h.name, join(fresh, h.name)) })),
    reporter,
    dryRun: false,
  });
  // A task in front of the PKI that takes a while, as preflight does in a real run: the keys are
  // generated meanwhile (at most one per CPU at a time).
  const slow: Task = {
    name: "preflight/slow",
    phase: "preflight",
    description: "stands for the work before the PKI",
    hosts: (x) => x.hosts,
    async check() {
      return { needed: true, reason: "always" };
    },
    async apply() {
      await new Promise((r) => setTimeout(r, 1500));
    },
  };
  const before = preparedKeys(2048);
  const summary = await runTasks([slow, ...certsTasks().map((t) => ({ ...t, after: [...(t.after ?? []), "preflight/slow"] })), ...kubeconfigTasks()], ctx);
  assert.equal(summary.failed, 0, JSON.stringify(summary.results.filter((x) => x.status === "failed")));
  const after = preparedKeys(2048);
  // cp1: 3 CAs, 7 leaves, sa, 5 kubeconfigs; cp2: 7 leaves, 4 kubeconfigs (the CAs and sa are copied).
  assert.equal(after.generated - before.generated, 27, "one generation per key written, none wasted");
  assert.deepEqual({ started: after.started, queued: after.queued }, { started: 0, queued: 0 });
  assert.ok(after.takenAhead - before.takenAhead >= 4, `keys taken from ahead: ${after.takenAhead - before.takenAhead}`);
  const keyFiles = Object.keys(fingerprint(fresh)).filter((p) => p.endsWith(".key") && !p.endsWith("sa.key")).length;
  assert.equal(keyFiles, 20, "cp1 and cp2: 10 .key files each besides sa.key");
  rmSync(fresh, { recursive: true, force: true });
});
