// runPipeline: facts first, then the tasks, the summary event last, RunFailed (exit 1) naming each
// failed host/task, command-line mistakes refused before any host is touched.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runPipeline } from "../../provisioner/engine/pipeline.js";
import { fileTask } from "../../provisioner/engine/file-task.js";
import { FACTS_TASK, factsTask } from "../../provisioner/tasks/facts.js";
import { MemoryReporter } from "../../provisioner/events.js";
import { RunFailed, UsageError } from "../../provisioner/errors.js";
import type { Host, Task } from "../../provisioner/engine/task.js";
import { clusterFor, makeTmpHosts, type TmpTransport } from "../helpers/tmp-transport.js";

/** A file task whose content comes from the facts: it fails (no facts) if facts did not run first. */
function archFile(dirOf: (h: Host) => string, phase = "files"): Task {
  return fileTask({
    name: `${phase}/arch`,
    phase,
    path: (h) => join(dirOf(h), "arch.txt"),
    mode: 0o644,
    content: (h) => {
      if (!h.facts) throw new Error("facts were not gathered before this task");
      return `${h.facts.arch} ${h.facts.kernel}\n`;
    },
  });
}

function failing(name: string, onHost: string): Task {
  return {
    name,
    phase: "breaks",
    description: "fails on one host",
    hosts: (ctx) => ctx.hosts,
    check: async () => ({ needed: true, reason: "always" }),
    apply: async (h) => {
      await h.transport.exec(h.name === onHost ? "echo 'E: unable to locate package frobnicate' >&2; exit 100" : "true");
    },
  };
}

test("facts run first on every host, then the tasks; summary last; the caller's hosts stay open", async () => {
  const made = await makeTmpHosts(2);
  try {
    const dirOf = (h: Host) => made.dirs[made.hosts.indexOf(h)];
    const reporter = new MemoryReporter();
    const opts = { cluster: clusterFor(made.hosts), source: "cluster.yaml", tasks: [archFile(dirOf)], facts: factsTask, hosts: made.hosts, reporter, lock: false };
    const s = await runPipeline(opts);
    assert.deepEqual([s.changed, s.unchanged, s.failed], [2, 2, 0]);
    const starts = reporter.events.filter((e) => e.type === "task-start").map((e) => (e.type === "task-start" ? e.task : ""));
    assert.deepEqual(starts.slice(0, 2), [FACTS_TASK, FACTS_TASK]);
    assert.equal(readFileSync(join(made.dirs[0], "arch.txt"), "utf8").split(" ")[0], made.hosts[0].facts!.arch);
    assert.equal(reporter.events.at(-1)!.type, "summary");
    for (const h of made.hosts) assert.equal((h.transport as TmpTransport).closed, false);

    const again = await runPipeline({ ...opts, reporter: new MemoryReporter() });
    assert.deepEqual([again.changed, again.unchanged], [0, 4]);
  } finally {
    await made.cleanup();
  }
});

test("a failed task makes runPipeline throw RunFailed (exit 1) naming host, task and stderr, after the summary", async () => {
  const made = await makeTmpHosts(3);
  try {
    const reporter = new MemoryReporter();
    const dirOf = (h: Host) => made.dirs[made.hosts.indexOf(h)];
    const tasks = [failing("prepare/packages", "h2"), { ...archFile(dirOf), after: ["prepare/packages"] }];
    await assert.rejects(
      runPipeline({ cluster: clusterFor(made.hosts), source: "cluster.yaml", tasks, facts: factsTask, hosts: made.hosts, reporter, lock: false }),
      (e: unknown) => {
        assert.ok(e instanceof RunFailed);
        assert.equal(e.exitCode, 1);
        assert.match(e.message, /^1 task failed:\n {2}h2 \[prepare\/packages\]: h2: command failed \(exit 100\)/);
        assert.match(e.details!, /h2 \[prepare\/packages\]:\nE: unable to locate package frobnicate/);
        return true;
      },
    );
    const last = reporter.events.at(-1)!;
    assert.equal(last.type, "summary");
    if (last.type === "summary") assert.deepEqual([last.failed, last.skipped, last.unchanged, last.changed], [1, 3, 3, 2]);
    assert.equal(existsSync(join(made.dirs[0], "arch.txt")), false, "a dependent of the failed task ran");
  } finally {
    await made.cleanup();
  }
});

test("unknown phases and skipping facts are usage errors before any host is touched", async () => {
  const made = await makeTmpHosts(1);
  try {
    const reporter = new MemoryReporter();
    const base = { cluster: clusterFor(made.hosts), source: "c.yaml", tasks: [failing("x/y", "h0")], facts: factsTask, hosts: made.hosts, reporter, lock: false };
    await assert.rejects(runPipeline({ ...base, skipPhases: ["certz"] }), /unknown phase "certz" in --skip-phases; the phases of this command are: facts, breaks/);
    await assert.rejects(runPipeline({ ...base, skipPhases: ["facts"] }), (e: unknown) => e instanceof UsageError && /cannot be skipped/.test(e.message));
    assert.equal(reporter.events.length, 0);
    assert.deepEqual((made.hosts[0].transport as TmpTransport).commands, []);
  } finally {
    await made.cleanup();
  }
});

test("onlyPhases still gathers facts; a dry run takes no lock and writes nothing", async () => {
  const made = await makeTmpHosts(1);
  try {
    const dirOf = (h: Host) => made.dirs[made.hosts.indexOf(h)];
    const reporter = new MemoryReporter();
    const tasks = [archFile(dirOf, "files"), failing("b/fails", "h0")];
    // lock left at its default: a dry run must not try to lock (and so does not need lock.ts).
    const s = await runPipeline({ cluster: clusterFor(made.hosts), source: "c.yaml", tasks, facts: factsTask, hosts: made.hosts, reporter, dryRun: true, onlyPhases: ["files"] });
    assert.deepEqual(
      s.results.map((r) => `${r.task}:${r.status}`),
      [`${FACTS_TASK}:ok`, "files/arch:changed", "b/fails:skipped"],
    );
    assert.equal(s.results[1].dryRun, true);
    assert.equal(existsSync(join(made.dirs[0], "arch.txt")), false);
  } finally {
    await made.cleanup();
  }
});

test("without given hosts it connects through the pool (connection: local)", async () => {
  const dir = await mkdtemp(join(tmpdir(), "kpt-pipeline-"));
  try {
    const cluster = clusterFor([{ name: "local1", address: "127.0.0.1", nodeIP: "127.0.0.1", roles: ["control-plane"] } as Host]);
    const reporter = new MemoryReporter();
    const task = fileTask({ name: "files/hello", phase: "files", path: join(dir, "hello.txt"), mode: 0o600, content: (h) => `hello from ${h.name} (${h.facts!.os.id})\n` });
    const s = await runPipeline({ cluster, source: "c.yaml", tasks: [task], facts: factsTask, reporter, lock: false });
    assert.deepEqual([s.changed, s.failed], [1, 0]);
    assert.match(readFileSync(join(dir, "hello.txt"), "utf8"), /^hello from local1 \(\w+\)\n$/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("an aborted run releases everything and fails with 'interrupted' (exit 1)", async () => {
  const made = await makeTmpHosts(1);
  try {
    const ac = new AbortController();
    ac.abort();
    const reporter = new MemoryReporter();
    await assert.rejects(
      runPipeline({ cluster: clusterFor(made.hosts), source: "c.yaml", tasks: [failing("x/y", "nobody")], facts: factsTask, hosts: made.hosts, reporter, lock: false, signal: ac.signal }),
      (e: unknown) => e instanceof Error && (e as { exitCode?: number }).exitCode === 1 && /^interrupted: 2 tasks not run/.test(e.message),
    );
    assert.deepEqual((made.hosts[0].transport as TmpTransport).commands, []);
    assert.equal(reporter.events.at(-1)!.type, "summary");
  } finally {
    await made.cleanup();
  }
});

test("-o json contract: JSON Lines task events with host/task/status, the summary event last", async () => {
  const made = await makeTmpHosts(2);
  const out = join(made.dirs[0], "events.jsonl");
  try {
    const { JsonLinesReporter } = await import("../../provisioner/output/json.js");
    const { createWriteStream } = await import("node:fs");
    const stream = createWriteStream(out);
    const reporter = new JsonLinesReporter(stream);
    const dirOf = (h: Host) => made.dirs[made.hosts.indexOf(h)];
    await assert.rejects(
      runPipeline({ cluster: clusterFor(made.hosts), source: "c.yaml", tasks: [archFile(dirOf), failing("prepare/pkgs", "h1")], facts: factsTask, hosts: made.hosts, reporter, lock: false }),
      RunFailed,
    );
    await reporter.close();
    await new Promise<void>((r) => stream.end(r));
    const events = readFileSync(out, "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const tasks = events.filter((e) => e.type === "task");
    assert.equal(tasks.length, 6);
    for (const e of tasks) {
      assert.ok(["ok", "changed", "failed", "skipped"].includes(e.status));
      assert.equal(typeof e.host, "string");
      assert.equal(typeof e.task, "string");
    }
    const failed = tasks.find((e) => e.status === "failed");
    assert.deepEqual([failed.host, failed.task], ["h1", "prepare/pkgs"]);
    assert.match(failed.details, /unable to locate package frobnicate/);
    const last = events.at(-1);
    assert.deepEqual(Object.keys(last).sort(), ["changed", "durationMs", "failed", "skipped", "type", "unchanged"]);
    assert.deepEqual([last.type, last.changed, last.unchanged, last.failed], ["summary", 3, 2, 1]);
  } finally {
    await made.cleanup();
  }
});

test("the cluster lock is held during the run, refuses a second run, and is released after success and failure", async () => {
  const made = await makeTmpHosts(2);
  try {
    const lockPath = (h: Host) => join(made.dirs[made.hosts.indexOf(h)], "kubeprov.lock");
    const lockOptions = { path: lockPath };
    const cluster = clusterFor(made.hosts);
    const slow: Task = {
      name: "slow/lockcheck",
      phase: "slow",
      description: "",
      hosts: (ctx) => ctx.hosts,
      check: async () => ({ needed: true }),
      // Real evidence: the lock file is there while tasks run.
      apply: async (h) => void (await h.transport.exec(`grep -q '^owner=first run$' ${lockPath(h)} && sleep 0.5`)),
    };
    const r1 = new MemoryReporter();
    const first = runPipeline({ cluster, source: "c.yaml", tasks: [slow], facts: factsTask, hosts: made.hosts, reporter: r1, lockOptions, lockOwner: "first run" });
    await new Promise((r) => setTimeout(r, 150));
    const r2 = new MemoryReporter();
    await assert.rejects(
      runPipeline({ cluster, source: "c.yaml", tasks: [slow], facts: factsTask, hosts: made.hosts, reporter: r2, lockOptions, lockOwner: "second run" }),
      (e: unknown) => e instanceof Error && /locked by another kubeprov run/.test(e.message) && /first run/.test(e.message),
    );
    assert.equal(r2.events.filter((e) => e.type === "task-start").length, 0, "the second run started tasks");
    const s1 = await first;
    assert.deepEqual([s1.changed, s1.failed], [2, 0]);
    for (const h of made.hosts) assert.equal(existsSync(lockPath(h)), false, "lock not released after success");

    await assert.rejects(
      runPipeline({ cluster, source: "c.yaml", tasks: [failing("x/fail", "h0")], facts: factsTask, hosts: made.hosts, reporter: new MemoryReporter(), lockOptions }),
      RunFailed,
    );
    for (const h of made.hosts) assert.equal(existsSync(lockPath(h)), false, "lock not released after a failure");

    // A dry run takes no lock: it writes nothing, not even a lock file.
    const probe: Task = { ...slow, name: "probe/nolock", phase: "probe", apply: async () => {}, check: async (h) => ({ needed: (await h.transport.exec(`test -e ${lockPath(h)}`, { check: false })).code === 0 }) };
    const dry = await runPipeline({ cluster, source: "c.yaml", tasks: [probe], facts: factsTask, hosts: made.hosts, reporter: new MemoryReporter(), lockOptions, dryRun: true });
    assert.deepEqual([dry.changed, dry.unchanged], [0, 4]);
  } finally {
    await made.cleanup();
  }
});

test("a lock taken over during the run stops starting tasks and fails naming the lock", async () => {
  const made = await makeTmpHosts(1);
  try {
    const lockPath = join(made.dirs[0], "kubeprov.lock");
    const steal: Task = {
      name: "a/steal",
      phase: "a",
      description: "",
      hosts: (ctx) => ctx.hosts,
      check: async () => ({ needed: true }),
      // Another run takes the lock over (a new id in the file); the renewal notices within 100 ms.
      apply: async (h) => void (await h.transport.exec(`printf 'kubeprov-lock\\nid=someone-else\\n' > ${lockPath} && sleep 0.4`)),
    };
    const next: Task = { ...steal, name: "b/next", phase: "b", after: ["a/steal"], apply: async (h) => void (await h.transport.exec("touch next-ran")) };
    const reporter = new MemoryReporter();
    await assert.rejects(
      runPipeline({ cluster: clusterFor(made.hosts), source: "c.yaml", tasks: [steal, next], facts: factsTask, hosts: made.hosts, reporter, lockOptions: { path: lockPath, touchMs: 100 } }),
      /^RuntimeFailure: the cluster lock on h0 was taken over by another run: 1 task not run/,
    );
    assert.equal(existsSync(join(made.dirs[0], "next-ran")), false);
    assert.ok(reporter.events.some((e) => e.type === "log" && e.level === "error" && /taken over/.test(e.message)));
    // Not ours any more: release left the other run's lock in place.
    assert.match(readFileSync(lockPath, "utf8"), /id=someone-else/);
  } finally {
    await made.cleanup();
  }
});

test("afterRun gets the run's own hosts and context while the lock is held, and only when every task succeeded", async () => {
  const made = await makeTmpHosts(2);
  try {
    const lockPath = (h: Host) => join(made.dirs[made.hosts.indexOf(h)], "kubeprov.lock");
    const cluster = clusterFor(made.hosts);
    // A task hands a value to later code through the context, as the bootstrap-token task does.
    const handOver: Task = {
      name: "token/keep",
      phase: "token",
      description: "",
      hosts: (ctx) => ctx.hosts.slice(0, 1),
      check: async () => ({ needed: true }),
      apply: async (h, ctx) => void ctx.shared.set("token", `from ${h.name}`),
    };
    const seen: string[] = [];
    const s = await runPipeline({
      cluster, source: "c.yaml", tasks: [handOver], facts: factsTask, hosts: made.hosts, reporter: new MemoryReporter(), lockOptions: { path: lockPath },
      afterRun: async (hosts, ctx) => {
        assert.equal(ctx.hosts, hosts);
        seen.push(String(ctx.shared.get("token")));
        for (const h of hosts) seen.push((await h.transport.exec(`cat ${lockPath(h)} >/dev/null && echo locked || echo free`, { check: false })).stdout.trim());
      },
    });
    assert.equal(s.failed, 0);
    assert.deepEqual(seen, ["from h0", "locked", "locked"]);
    for (const h of made.hosts) assert.equal(existsSync(lockPath(h)), false, "lock not released after afterRun");

    seen.length = 0;
    await assert.rejects(
      runPipeline({ cluster, source: "c.yaml", tasks: [failing("x/fail", "h0")], facts: factsTask, hosts: made.hosts, reporter: new MemoryReporter(), lockOptions: { path: lockPath }, afterRun: async () => void seen.push("ran") }),
      RunFailed,
    );
    assert.deepEqual(seen, [], "afterRun ran after a failed task");
  } finally {
    await made.cleanup();
  }
});
