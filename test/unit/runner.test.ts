// The runner on real processes: every task runs real shell commands in a temporary directory per
// host (TmpTransport), and timings/ordering are read back from what those commands wrote.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runTasks, TaskGraphError, type RunSummary } from "../../provisioner/engine/runner.js";
import { createRunContext } from "../../provisioner/engine/context.js";
import { fileTask } from "../../provisioner/engine/file-task.js";
import { MemoryReporter, type KubeprovEvent } from "../../provisioner/events.js";
import { UsageError } from "../../provisioner/errors.js";
import { shq } from "../../provisioner/transport/transport.js";
import type { Host, RunContext, Task } from "../../provisioner/engine/task.js";
import { clusterFor, makeTmpHosts, type TmpTransport } from "../helpers/tmp-transport.js";

let shared: string;
before(async () => {
  shared = await mkdtemp(join(tmpdir(), "kpt-runner-"));
});
after(async () => {
  await rm(shared, { recursive: true, force: true });
});

const marker = (task: string) => `done-${task.replace(/\//g, "_")}`;

/** A task whose apply runs `cmd` and logs "<ns> start|end <task> <host>" lines to the shared log. */
function cmdTask(t: {
  name: string;
  phase?: string;
  cmd: (h: Host) => string;
  after?: string[];
  serial?: boolean | "first";
  perHost?: boolean;
  hosts?: (ctx: RunContext) => Host[];
  log: string;
  cleanupMarker?: boolean;
}): Task {
  const stamp = (what: string, h: Host) => `echo "$(date +%s%N) ${what} ${t.name} ${h.name}" >> ${shq(t.log)}`;
  return {
    name: t.name,
    phase: t.phase ?? "test",
    description: t.name,
    hosts: t.hosts ?? ((ctx) => ctx.hosts),
    ...(t.after ? { after: t.after } : {}),
    ...(t.serial ? { serial: t.serial } : {}),
    ...(t.perHost ? { perHost: true } : {}),
    // Done when its marker file exists in the host's directory.
    async check(h) {
      const r = await h.transport.exec(`test -e ${shq(marker(t.name))}`, { check: false });
      return r.code === 0 ? { needed: false, reason: "marker present" } : { needed: true, reason: `run ${t.name}` };
    },
    async apply(h) {
      await h.transport.exec(`${stamp("start", h)}; ${t.cmd(h)}; ${stamp("end", h)}; touch ${shq(marker(t.name))}`);
    },
    ...(t.cleanupMarker
      ? {
          async cleanup(h: Host) {
            await h.transport.exec(`touch cleaned-${t.name}`);
          },
        }
      : {}),
  };
}

interface Span {
  task: string;
  host: string;
  start: number;
  end: number;
}
function spans(log: string): Span[] {
  const open = new Map<string, number>();
  const out: Span[] = [];
  for (const line of readFileSync(log, "utf8").trim().split("\n")) {
    const [ns, what, task, host] = line.split(" ");
    const ms = Number(BigInt(ns) / 1000n) / 1000;
    if (what === "start") open.set(`${task} ${host}`, ms);
    else out.push({ task, host, start: open.get(`${task} ${host}`)!, end: ms });
  }
  return out;
}
function maxOverlap(ss: Span[]): number {
  const points = ss.flatMap((s) => [
    [s.start, 1],
    [s.end, -1],
  ]);
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let max = 0;
  for (const [, d] of points) max = Math.max(max, (cur += d));
  return max;
}

async function setup(n: number, dryRun = false) {
  const made = await makeTmpHosts(n);
  const reporter = new MemoryReporter();
  const ctx = createRunContext({ cluster: clusterFor(made.hosts), source: "test", hosts: made.hosts, reporter, dryRun });
  const log = join(shared, `log-${Math.random().toString(36).slice(2)}`);
  return { ...made, reporter, ctx, log };
}
const taskEvents = (r: MemoryReporter) => r.events.filter((e): e is Extract<KubeprovEvent, { type: "task" }> => e.type === "task");
const find = (s: RunSummary, task: string, host: string) => s.results.find((r) => r.task === task && r.host === host)!;

test("a task with `after` starts only when its dependency finished on all hosts", async () => {
  const env = await setup(3);
  try {
    const tasks = [
      // h2 is slowest for A; B must wait for it on every host.
      cmdTask({ name: "b", log: env.log, cmd: () => "true", after: ["a"] }),
      cmdTask({ name: "a", log: env.log, cmd: (h) => `sleep 0.${h.name === "h2" ? 3 : 1}` }),
    ];
    const s = await runTasks(tasks, env.ctx);
    assert.equal(s.changed, 6);
    const sp = spans(env.log);
    const aEnd = Math.max(...sp.filter((x) => x.task === "a").map((x) => x.end));
    const bStart = Math.min(...sp.filter((x) => x.task === "b").map((x) => x.start));
    assert.ok(bStart >= aEnd, `b started at ${bStart}, before a ended at ${aEnd}`);
  } finally {
    await env.cleanup();
  }
});

test("hosts run in parallel: two hosts' 300 ms tasks take about 300 ms, not 600", async () => {
  const env = await setup(2);
  try {
    const s = await runTasks([cmdTask({ name: "sleep", log: env.log, cmd: () => "sleep 0.3" })], env.ctx);
    assert.equal(s.changed, 2);
    assert.ok(s.durationMs >= 300 && s.durationMs < 590, `took ${s.durationMs} ms (one after the other would be 600 or more)`);
    assert.equal(maxOverlap(spans(env.log)), 2);
  } finally {
    await env.cleanup();
  }
});

test("the concurrency limit is respected", async () => {
  const env = await setup(6);
  try {
    const s = await runTasks([cmdTask({ name: "sleep", log: env.log, cmd: () => "sleep 0.2" })], env.ctx, { concurrency: 2 });
    assert.equal(s.changed, 6);
    assert.equal(maxOverlap(spans(env.log)), 2);
    assert.ok(s.durationMs >= 600, `6 x 200 ms two at a time took only ${s.durationMs} ms`);
  } finally {
    await env.cleanup();
  }
});

test("a serial task runs on one host at a time, in host order", async () => {
  const env = await setup(3);
  try {
    const s = await runTasks([cmdTask({ name: "member", log: env.log, cmd: () => "sleep 0.1", serial: true })], env.ctx);
    assert.equal(s.changed, 3);
    const sp = spans(env.log).sort((a, b) => a.start - b.start);
    assert.deepEqual(
      sp.map((x) => x.host),
      ["h0", "h1", "h2"],
    );
    assert.equal(maxOverlap(sp), 1);
  } finally {
    await env.cleanup();
  }
});

test('serial "first": the first host alone, then the others together', async () => {
  const env = await setup(4);
  try {
    const s = await runTasks([cmdTask({ name: "certs", log: env.log, cmd: () => "sleep 0.3", serial: "first" })], env.ctx);
    assert.equal(s.changed, 4);
    const sp = spans(env.log).sort((a, b) => a.start - b.start);
    assert.equal(sp[0].host, "h0");
    for (const x of sp.slice(1)) assert.ok(x.start >= sp[0].end, `${x.host} started before h0 ended`);
    assert.equal(maxOverlap(sp.slice(1)), 3, "the three others ran at the same time");
  } finally {
    await env.cleanup();
  }
});

test("a failure skips its dependents, names host, task and stderr, runs cleanup; other work goes on", async () => {
  const env = await setup(2);
  try {
    const tasks = [
      cmdTask({
        name: "a",
        log: env.log,
        cleanupMarker: true,
        cmd: (h) => (h.name === "h1" ? "echo 'boom: disk full on h1' >&2; exit 3" : "true"),
      }),
      cmdTask({ name: "b", log: env.log, cmd: () => "true", after: ["a"] }),
      cmdTask({ name: "c", log: env.log, cmd: () => "true", after: ["b"] }),
      cmdTask({ name: "d", log: env.log, cmd: () => "true", after: ["a"], perHost: true }),
      cmdTask({ name: "independent", log: env.log, cmd: () => "sleep 0.1" }),
    ];
    const s = await runTasks(tasks, env.ctx);
    const failed = taskEvents(env.reporter).filter((e) => e.status === "failed");
    assert.equal(failed.length, 1);
    assert.equal(failed[0].host, "h1");
    assert.equal(failed[0].task, "a");
    assert.match(failed[0].error!, /exit 3/);
    assert.match(failed[0].details!, /boom: disk full on h1/);
    // b waits for a on all hosts: skipped everywhere; c transitively; the reason names the failure.
    for (const h of ["h0", "h1"]) {
      for (const t of ["b", "c"]) {
        assert.equal(find(s, t, h).status, "skipped", `${t} on ${h}`);
        assert.equal(find(s, t, h).reason, "skipped: a failed on h1");
      }
    }
    // d is per host: it ran where a succeeded.
    assert.equal(find(s, "d", "h0").status, "changed");
    assert.equal(find(s, "d", "h1").status, "skipped");
    assert.equal(find(s, "independent", "h0").status, "changed");
    assert.equal(find(s, "independent", "h1").status, "changed");
    assert.equal(find(s, "a", "h0").status, "changed");
    // Skipped tasks never ran: no markers; cleanup ran on the failed host only.
    const [d0, d1] = env.dirs;
    assert.equal(existsSync(join(d0, "done-b")), false);
    assert.equal(existsSync(join(d1, "cleaned-a")), true);
    assert.equal(existsSync(join(d0, "cleaned-a")), false);
    assert.deepEqual(
      { changed: s.changed, unchanged: s.unchanged, failed: s.failed, skipped: s.skipped },
      { changed: 4, unchanged: 0, failed: 1, skipped: 5 },
    );
    assert.equal(s.results.length, 10);
  } finally {
    await env.cleanup();
  }
});

test("a serial task that fails on a host is not started on the hosts after it", async () => {
  const env = await setup(3);
  try {
    const t = cmdTask({ name: "member", log: env.log, serial: true, cmd: (h) => (h.name === "h1" ? "exit 1" : "true") });
    const s = await runTasks([t], env.ctx);
    assert.deepEqual(
      s.results.map((r) => r.status),
      ["changed", "failed", "skipped"],
    );
    assert.equal(existsSync(join(env.dirs[2], "done-member")), false);
  } finally {
    await env.cleanup();
  }
});

test("dry run changes no file and reports what would change; then apply; then a re-run reports 0 changed", async () => {
  const env = await setup(2);
  try {
    const tasks = () => [
      fileTask({ name: "files/conf", phase: "files", path: (h) => join(env.dirs[env.hosts.indexOf(h)], "etc", "app.conf"), mode: 0o640, content: (h) => `name=${h.name}\n` }),
      cmdTask({ name: "marker", phase: "files", log: env.log, cmd: () => "true", after: ["files/conf"] }),
    ];
    const dry = createRunContext({ ...env.ctx, dryRun: true });
    const s1 = await runTasks(tasks(), dry);
    assert.equal(s1.changed, 4);
    assert.equal(s1.dryRun, true);
    for (const r of s1.results) assert.equal(r.dryRun, true);
    assert.match(find(s1, "files/conf", "h0").reason!, /^create .*app\.conf \(8 bytes, mode 0640\)$/);
    for (const d of env.dirs) {
      assert.equal(existsSync(join(d, "etc")), false, "dry run wrote a file");
      assert.equal(existsSync(join(d, "done-marker")), false, "dry run ran apply");
    }
    const summaryEvent = env.reporter.events.at(-1)!;
    assert.deepEqual({ ...summaryEvent, durationMs: 0 }, { type: "summary", changed: 4, unchanged: 0, failed: 0, skipped: 0, durationMs: 0, dryRun: true });

    const s2 = await runTasks(tasks(), env.ctx);
    assert.equal(s2.changed, 4);
    assert.equal(readFileSync(join(env.dirs[1], "etc", "app.conf"), "utf8"), "name=h1\n");

    const s3 = await runTasks(tasks(), env.ctx);
    assert.deepEqual([s3.changed, s3.unchanged, s3.failed, s3.skipped], [0, 4, 0, 0]);
    const s4 = await runTasks(tasks(), createRunContext({ ...env.ctx, dryRun: true }));
    assert.deepEqual([s4.changed, s4.unchanged], [0, 4]);
  } finally {
    await env.cleanup();
  }
});

test("skipPhases and onlyPhases skip tasks without running them; their dependents still run", async () => {
  const env = await setup(2);
  try {
    const tasks = () => [
      cmdTask({ name: "p1/x", phase: "p1", log: env.log, cmd: () => "true" }),
      cmdTask({ name: "p2/y", phase: "p2", log: env.log, cmd: () => "true", after: ["p1/x"] }),
      cmdTask({ name: "p3/z", phase: "p3", log: env.log, cmd: () => "true", after: ["p2/y"] }),
    ];
    const s = await runTasks(tasks(), env.ctx, { skipPhases: ["p1"] });
    assert.equal(find(s, "p1/x", "h0").status, "skipped");
    assert.equal(find(s, "p1/x", "h0").reason, 'phase "p1" skipped');
    assert.equal(find(s, "p2/y", "h0").status, "changed");
    assert.equal(find(s, "p3/z", "h1").status, "changed");
    assert.equal(existsSync(join(env.dirs[0], marker("p1/x"))), false);
    assert.deepEqual([s.changed, s.skipped], [4, 2]);

    const s2 = await runTasks(tasks(), env.ctx, { onlyPhases: ["p1"] });
    assert.deepEqual(
      s2.results.map((r) => `${r.task}:${r.status}`),
      ["p1/x:changed", "p1/x:changed", "p2/y:skipped", "p2/y:skipped", "p3/z:skipped", "p3/z:skipped"],
    );
  } finally {
    await env.cleanup();
  }
});

test("an unknown phase is a UsageError (exit 2) and nothing runs", async () => {
  const env = await setup(1);
  try {
    const t = cmdTask({ name: "p1/x", phase: "p1", log: env.log, cmd: () => "true" });
    await assert.rejects(runTasks([t], env.ctx, { skipPhases: ["p9"] }), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.equal(e.exitCode, 2);
      assert.match(e.message, /unknown phase "p9" in --skip-phases; the phases of this command are: p1/);
      return true;
    });
    await assert.rejects(runTasks([t], env.ctx, { onlyPhases: ["p1", "nope"] }), UsageError);
    assert.equal(env.reporter.events.length, 0);
    assert.equal(existsSync(join(env.dirs[0], marker("p1/x"))), false);
  } finally {
    await env.cleanup();
  }
});

test("a wrong task list (unknown `after`, cycle, duplicate name) throws before anything runs", async () => {
  const env = await setup(1);
  try {
    const mk = (name: string, after?: string[]) => cmdTask({ name, log: env.log, cmd: () => "true", after });
    await assert.rejects(runTasks([mk("a", ["ghost"])], env.ctx), (e: unknown) => e instanceof TaskGraphError && /"a" runs after "ghost"/.test(e.message));
    await assert.rejects(runTasks([mk("a", ["c"]), mk("b", ["a"]), mk("c", ["b"])], env.ctx), /cycle: a -> c -> b -> a/);
    await assert.rejects(runTasks([mk("a"), mk("a")], env.ctx), /two tasks are named "a"/);
    assert.equal(env.reporter.events.length, 0);
    assert.equal(existsSync(env.log), false);
  } finally {
    await env.cleanup();
  }
});

test("events: task-start then task per node, summary last with counts matching the results", async () => {
  const env = await setup(2);
  try {
    const tasks = [
      cmdTask({ name: "one", log: env.log, cmd: () => "true" }),
      cmdTask({ name: "two", log: env.log, cmd: () => "true", after: ["one"] }),
    ];
    await runTasks(tasks, env.ctx); // converge
    env.reporter.events.length = 0;
    await assert.doesNotReject(env.hosts[1].transport.exec("rm done-two"));
    const s = await runTasks(tasks, env.ctx);
    const ev = env.reporter.events;
    assert.equal(ev.at(-1)!.type, "summary");
    assert.equal(ev.filter((e) => e.type === "summary").length, 1);
    for (const r of s.results) {
      const i = ev.findIndex((e) => e.type === "task-start" && e.host === r.host && e.task === r.task);
      const j = ev.findIndex((e) => e.type === "task" && e.host === r.host && e.task === r.task);
      assert.ok(i >= 0 && j > i, `${r.task}@${r.host}: start ${i}, end ${j}`);
    }
    assert.deepEqual(
      s.results.map((r) => [r.task, r.host, r.status, r.reason]),
      [
        ["one", "h0", "ok", "marker present"],
        ["one", "h1", "ok", "marker present"],
        ["two", "h0", "ok", "marker present"],
        ["two", "h1", "changed", "run two"],
      ],
    );
    const sum = ev.at(-1) as Extract<KubeprovEvent, { type: "summary" }>;
    assert.deepEqual([sum.changed, sum.unchanged, sum.failed, sum.skipped], [1, 3, 0, 0]);
    assert.equal(sum.dryRun, undefined);
    assert.ok(sum.durationMs >= 0);
  } finally {
    await env.cleanup();
  }
});

test("a check that throws fails the node without calling apply; readOnly tasks run in a dry run and report ok", async () => {
  const env = await setup(1);
  try {
    const ctx = createRunContext({ ...env.ctx, dryRun: true });
    const applied: string[] = [];
    const broken: Task = {
      name: "broken",
      phase: "t",
      description: "",
      hosts: (c) => c.hosts,
      check: async (h) => {
        await h.transport.exec("cat /nonexistent/kpt-file");
        return { needed: true };
      },
      apply: async () => {
        applied.push("broken");
      },
    };
    const reader: Task = {
      name: "reader",
      phase: "t",
      description: "",
      hosts: (c) => c.hosts,
      readOnly: true,
      check: async () => ({ needed: true, reason: "read" }),
      apply: async (h) => {
        const r = await h.transport.exec("uname -s");
        applied.push("reader");
        return { detail: r.stdout.trim() };
      },
    };
    const s = await runTasks([broken, reader], ctx);
    assert.deepEqual(applied, ["reader"]);
    assert.equal(find(s, "broken", "h0").status, "failed");
    assert.match(find(s, "broken", "h0").details!, /No such file or directory/);
    assert.deepEqual([find(s, "reader", "h0").status, find(s, "reader", "h0").reason], ["ok", "Linux"]);
  } finally {
    await env.cleanup();
  }
});

test("a task with no hosts does not hold up its dependents; hundreds of hosts run within the default limit", async () => {
  const made = await makeTmpHosts(1);
  try {
    // 300 hosts sharing one directory: each writes its own file.
    const hosts: Host[] = Array.from({ length: 300 }, (_, i) => ({ ...made.hosts[0], name: `n${i}` }));
    const reporter = new MemoryReporter();
    const ctx = createRunContext({ cluster: clusterFor(made.hosts), hosts, reporter });
    const none: Task = { name: "none", phase: "t", description: "", hosts: () => [], check: async () => ({ needed: true }), apply: async () => {} };
    const files = fileTask({ name: "f", phase: "t", after: ["none"], path: (h) => join(made.dirs[0], `${h.name}.txt`), mode: 0o600, content: (h) => h.name });
    const s = await runTasks([none, files], ctx);
    assert.deepEqual([s.changed, s.failed, s.results.length], [300, 0, 300]);
    assert.equal(readFileSync(join(made.dirs[0], "n299.txt"), "utf8"), "n299");
    assert.ok((made.hosts[0].transport as TmpTransport).commands.length >= 300);
  } finally {
    await made.cleanup();
  }
});

test("an abort starts nothing new: running nodes finish, the rest are skipped as interrupted", async () => {
  const env = await setup(3);
  try {
    const ac = new AbortController();
    const tasks = [
      cmdTask({ name: "slow", log: env.log, cmd: () => "sleep 0.3" }),
      cmdTask({ name: "next", log: env.log, cmd: () => "true", after: ["slow"] }),
    ];
    setTimeout(() => ac.abort(), 100);
    const s = await runTasks(tasks, env.ctx, { concurrency: 1, signal: ac.signal });
    assert.equal(s.interrupted, true);
    assert.deepEqual(
      s.results.map((r) => `${r.task}@${r.host}:${r.status}${r.reason === "interrupted" ? "(interrupted)" : ""}`),
      ["slow@h0:changed", "slow@h1:skipped(interrupted)", "slow@h2:skipped(interrupted)", "next@h0:skipped(interrupted)", "next@h1:skipped(interrupted)", "next@h2:skipped(interrupted)"],
    );
    assert.ok(existsSync(join(env.dirs[0], "done-slow")), "the running node was not allowed to finish");
    assert.equal(existsSync(join(env.dirs[1], "done-slow")), false);
    assert.ok(s.durationMs < 600, `took ${s.durationMs} ms`);
  } finally {
    await env.cleanup();
  }
});

test("dry run: a check that fails because an upstream task would change first is reported as a change to come", async () => {
  const env = await setup(1);
  try {
    const dir = env.dirs[0];
    const ca = fileTask({ name: "certs/ca", phase: "certs", path: join(dir, "pki", "ca.crt"), mode: 0o644, content: "CA\n" });
    // Its check reads what certs/ca writes: it cannot answer before certs/ca has run.
    const leaf: Task = {
      name: "certs/leaf",
      phase: "certs",
      description: "",
      after: ["certs/ca"],
      hosts: (c) => c.hosts,
      check: async (h) => {
        const r = await h.transport.exec("cat pki/ca.crt && test -e pki/leaf.crt", { check: false });
        if (r.code !== 0 && !r.stdout) throw new Error(`cannot read the CA: ${r.stderr.trim()}`);
        return r.code === 0 ? { needed: false } : { needed: true, reason: "issue leaf" };
      },
      apply: async (h) => {
        await h.transport.exec("touch pki/leaf.crt");
      },
    };
    const dry = await runTasks([ca, leaf], createRunContext({ ...env.ctx, dryRun: true }));
    assert.deepEqual(
      dry.results.map((r) => [r.task, r.status, r.dryRun]),
      [
        ["certs/ca", "changed", true],
        ["certs/leaf", "changed", true],
      ],
    );
    assert.match(dry.results[1].reason!, /^would run after certs\/ca on h0 changes \(its check cannot tell before that: cannot read the CA: .*No such file/);
    assert.equal(existsSync(join(dir, "pki")), false);
    const real = await runTasks([ca, leaf], env.ctx);
    assert.deepEqual([real.changed, real.failed], [2, 0]);
    const again = await runTasks([ca, leaf], createRunContext({ ...env.ctx, dryRun: true }));
    assert.deepEqual([again.changed, again.unchanged], [0, 2]);
  } finally {
    await env.cleanup();
  }
});

test("perHost falls back to all hosts for a task that does not run on this host", async () => {
  const env = await setup(2);
  try {
    const tasks = [
      cmdTask({ name: "first-cp", log: env.log, cmd: () => "sleep 0.2", hosts: (c) => [c.hosts[0]] }),
      cmdTask({ name: "join", log: env.log, cmd: () => "true", after: ["first-cp"], perHost: true }),
    ];
    const s = await runTasks(tasks, env.ctx);
    assert.equal(s.changed, 3);
    const sp = spans(env.log);
    const cpEnd = sp.find((x) => x.task === "first-cp")!.end;
    for (const j of sp.filter((x) => x.task === "join")) assert.ok(j.start >= cpEnd, `join on ${j.host} started before first-cp ended`);
  } finally {
    await env.cleanup();
  }
});

test("scheduling overhead stays small for 1000 hosts x 20 tasks (in-process tasks)", async () => {
  const hosts: Host[] = Array.from({ length: 1000 }, (_, i) => ({ name: `n${i}`, address: "127.0.0.1", nodeIP: "127.0.0.1", roles: ["worker"], spec: { name: `n${i}`, address: "127.0.0.1", roles: ["worker"], connection: "local" }, transport: undefined as never }));
  const tasks: Task[] = Array.from({ length: 20 }, (_, i) => ({
    name: `t${i}`,
    phase: "p",
    description: "",
    hosts: (c) => c.hosts,
    after: i ? [`t${i - 1}`] : [],
    perHost: i % 2 === 0,
    check: async () => ({ needed: i % 3 === 0 }),
    apply: async () => {},
  }));
  const ctx = createRunContext({ cluster: clusterFor(hosts.slice(0, 1)), hosts, reporter: new MemoryReporter() });
  const s = await runTasks(tasks, ctx);
  assert.deepEqual([s.changed, s.unchanged, s.results.length], [7000, 13000, 20000]);
  assert.ok(s.durationMs < 3000, `20000 nodes took ${s.durationMs} ms`);
});

test("a task's waitsFor is in its event when apply ran, not when the check found nothing to do", async () => {
  const env = await setup(1);
  try {
    const tasks = [{ ...cmdTask({ name: "w", log: env.log, cmd: () => "true" }), waitsFor: "the API server" }];
    await runTasks(tasks, env.ctx);
    assert.equal(taskEvents(env.reporter).find((e) => e.task === "w")?.waitsFor, "the API server");
    env.reporter.events.length = 0;
    await runTasks(tasks, env.ctx);
    const again = taskEvents(env.reporter).find((e) => e.task === "w")!;
    assert.equal(again.status, "ok");
    assert.equal(again.waitsFor, undefined);
  } finally {
    await env.cleanup();
  }
});

/** A task whose check sleeps `checkMs` and counts its calls; apply touches its marker. */
function slowCheckTask(name: string, after: string[], checkMs: number, calls: Map<string, number>, ahead: boolean): Task {
  return {
    name,
    phase: "test",
    description: name,
    hosts: (ctx) => ctx.hosts,
    ...(after.length ? { after } : {}),
    ...(ahead ? { checkAhead: true } : {}),
    async check(h) {
      calls.set(name, (calls.get(name) ?? 0) + 1);
      const r = await h.transport.exec(`sleep ${checkMs / 1000}; test -e ${shq(marker(name))} && test ! -e ${shq(`stale-${name}`)}`, { check: false });
      return r.code === 0 ? { needed: false, reason: "marker present" } : { needed: true, reason: `run ${name}` };
    },
    async apply(h) {
      await h.transport.exec(`touch ${shq(marker(name))}; rm -f ${shq(`stale-${name}`)}`);
    },
  };
}

test("checks ahead: a converged chain's checks run side by side; after a change upstream they are asked again", async () => {
  const env = await setup(1);
  try {
    const chain = (calls: Map<string, number>, ahead: boolean) => [
      slowCheckTask("c1", [], 200, calls, ahead),
      slowCheckTask("c2", ["c1"], 200, calls, ahead),
      slowCheckTask("c3", ["c2"], 200, calls, ahead),
    ];
    // First run: everything applies (the checks ahead saw no markers; they are asked again in turn).
    const first = new Map<string, number>();
    const s1 = await runTasks(chain(first, true), env.ctx);
    assert.equal(s1.changed, 3);
    // Converged: with checks ahead the three 200 ms checks overlap (two at a time per host).
    const calls = new Map<string, number>();
    const s2 = await runTasks(chain(calls, true), env.ctx);
    assert.equal(s2.changed, 0);
    assert.deepEqual([...calls.values()], [1, 1, 1], "each check asked once");
    const plain = await runTasks(chain(new Map(), false), env.ctx);
    assert.ok(s2.durationMs < plain.durationMs - 100, `ahead ${s2.durationMs} ms, in turn ${plain.durationMs} ms`);
    // c1 must apply again: c2 and c3, which come after it, are asked again after it, whatever they answered ahead.
    const h = env.ctx.hosts[0];
    await h.transport.exec(`touch ${shq("stale-c1")}`);
    const again = new Map<string, number>();
    const s3 = await runTasks(chain(again, true), env.ctx);
    assert.equal(s3.changed, 1);
    assert.equal(again.get("c1"), 1);
    // c2's check ahead (started with c1's) is not trusted: asked again in its turn.
    assert.equal(again.get("c2"), 2);
    assert.ok((again.get("c3") ?? 0) >= 1);
    const c2 = s3.results.find((r) => r.task === "c2")!;
    assert.equal(c2.status, "ok");
  } finally {
    await env.cleanup();
  }
});

test("prepare: called once per host after the prerequisites, beside the work; its signal ends with the run; never in a dry run; a failure is ignored", async () => {
  for (const dryRun of [false, true]) {
    const env = await setup(2, dryRun);
    try {
      const calls: Array<{ host: string; factsDone: boolean; signal: AbortSignal }> = [];
      let factsDoneOn = 0;
      const facts = cmdTask({ name: "facts/gather", log: env.log, cmd: () => "sleep 0.2" });
      const work = cmdTask({ name: "w", log: env.log, cmd: () => "sleep 0.3", after: ["facts/gather"] });
      const origFactsApply = facts.apply;
      facts.apply = async (h, c) => {
        await origFactsApply.call(facts, h, c);
        factsDoneOn++;
      };
      const prepared: Task = {
        ...cmdTask({ name: "p", log: env.log, cmd: () => "true", after: ["w"] }),
        async prepare(h, _c, signal) {
          calls.push({ host: h.name, factsDone: factsDoneOn === 2, signal });
          if (h.name === "h0") throw new Error("a failing prepare is ignored");
        },
      };
      const s = await runTasks([facts, work, prepared], env.ctx, { prerequisites: ["facts/gather"] });
      assert.equal(s.failed, 0);
      if (dryRun) {
        assert.deepEqual(calls, [], "no prepare in a dry run");
        continue;
      }
      assert.deepEqual(calls.map((c) => c.host).sort(), ["h0", "h1"]);
      assert.ok(calls.every((c) => c.factsDone), "prepare waits for the prerequisites on every host");
      assert.ok(calls.every((c) => c.signal.aborted), "the signal is aborted once the run is over");
      const sp = spans(env.log);
      const wStart = Math.min(...sp.filter((x) => x.task === "w").map((x) => x.start));
      assert.ok(wStart > 0, "the work after the prerequisites ran");
    } finally {
      await env.cleanup();
    }
  }
});
