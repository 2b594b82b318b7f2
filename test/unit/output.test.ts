// Reporters: -o json prints one JSON object per event per line with the summary last; the plain
// reporter prints one readable line per finished task, failures with their details, and a summary.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { PassThrough } from "node:stream";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { JsonLinesReporter, PlainReporter, inCI } from "../../provisioner/output/index.js";
import type { KubeprovEvent } from "../../provisioner/events.js";
import { criticalPath, renderTimings, TimingsRecorder } from "../../provisioner/output/timings.js";

const outputIndex = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "provisioner", "output", "index.js");

const events: KubeprovEvent[] = [
  { type: "task-start", host: "master1", task: "certs/ca", phase: "certs" },
  { type: "task", host: "master1", task: "certs/ca", phase: "certs", status: "changed", reason: "created ca.crt", durationMs: 120 },
  { type: "task", host: "node1", task: "prepare/kubelet", phase: "prepare", status: "ok", durationMs: 3 },
  { type: "check", host: "node1", id: "swap", status: "warn", message: "swap is on" },
  { type: "task", host: "node1", task: "apply", phase: "join", status: "failed", error: "command failed (exit 1)", details: "kubeadm: line one\nline two", durationMs: 40 },
  { type: "task", host: "node1", task: "join/wait", phase: "join", status: "skipped", reason: "join/apply failed", durationMs: 0 },
  { type: "log", level: "debug", message: "hidden unless -v" },
  { type: "log", level: "warn", message: "certificate expires soon", host: "master1" },
  { type: "summary", changed: 1, unchanged: 1, failed: 1, skipped: 1, durationMs: 2500 },
];

async function capture(make: (out: PassThrough) => { emit(e: KubeprovEvent): void; close(): Promise<void> }): Promise<string> {
  const out = new PassThrough();
  let text = "";
  out.on("data", (d) => (text += d.toString()));
  const r = make(out);
  for (const e of events) r.emit(e);
  await r.close();
  return text;
}

describe("JSON Lines reporter", () => {
  test("one JSON object per line, every event, summary last", async () => {
    const text = await capture((o) => new JsonLinesReporter(o));
    assert.ok(text.endsWith("\n"));
    const lines = text.trimEnd().split("\n");
    assert.equal(lines.length, events.length);
    const parsed: Array<Record<string, unknown>> = lines.map((l) => JSON.parse(l));
    assert.deepEqual(parsed, events);
    const task = parsed.find((e) => e.type === "task" && e.status === "changed");
    assert.deepEqual(Object.keys(task!).slice(0, 5), ["type", "host", "task", "phase", "status"]);
    const last = parsed[parsed.length - 1];
    assert.deepEqual(last, { type: "summary", changed: 1, unchanged: 1, failed: 1, skipped: 1, durationMs: 2500 });
  });

  test("createReporter('json') writes JSON Lines to stdout", () => {
    const script = `
      const { createReporter } = await import(${JSON.stringify(outputIndex)});
      const r = createReporter("json");
      r.emit({ type: "task", host: "h1", task: "certs/ca", phase: "certs", status: "ok", durationMs: 1 });
      r.emit({ type: "summary", changed: 0, unchanged: 1, failed: 0, skipped: 0, durationMs: 5 });
      await r.close();`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const lines = r.stdout.trimEnd().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines.length, 2);
    assert.equal(lines[0].status, "ok");
    assert.equal(lines[1].type, "summary");
  });
});

describe("plain reporter", () => {
  test("a line per finished task, failures with indented details, checks, warnings and a summary", async () => {
    const text = await capture((o) => new PlainReporter(o));
    assert.equal(
      text,
      [
        "[master1] certs/ca: changed (created ca.crt)",
        "[node1] prepare/kubelet: ok",
        "[node1] check swap: WARN swap is on",
        "[node1] join/apply: FAILED: command failed (exit 1)",
        "    kubeadm: line one",
        "    line two",
        "[node1] join/wait: skipped (join/apply failed)",
        "[master1] warn: certificate expires soon",
        "summary: 1 changed, 1 unchanged, 1 failed, 1 skipped in 2.5s",
        "",
      ].join("\n"),
    );
  });

  test("-v shows debug logs and task starts", async () => {
    const text = await capture((o) => new PlainReporter(o, 1));
    assert.match(text, /^\[master1\] certs\/ca: started$/m);
    assert.match(text, /^debug: hidden unless -v$/m);
  });

  test("dry run says would change", async () => {
    const out = new PassThrough();
    let text = "";
    out.on("data", (d) => (text += d.toString()));
    const r = new PlainReporter(out);
    r.emit({ type: "task", host: "h", task: "certs/ca", phase: "certs", status: "changed", dryRun: true, reason: "ca.crt missing", durationMs: 1 });
    r.emit({ type: "summary", changed: 1, unchanged: 0, failed: 0, skipped: 0, durationMs: 10, dryRun: true });
    await r.close();
    assert.equal(text, "[h] certs/ca: would change (ca.crt missing)\ndry run: 1 would change, 0 unchanged, 0 failed, 0 skipped in 10ms\n");
  });

  test("text output is plain lines when stdout is not a terminal or CI is set", () => {
    assert.equal(inCI({ CI: "true" }), true);
    assert.equal(inCI({ CI: "false" }), false);
    assert.equal(inCI({}), false);
    const script = `
      const { createReporter, PlainReporter } = await import(${JSON.stringify(outputIndex)});
      const r = createReporter("text");
      process.stdout.write(String(r instanceof PlainReporter) + "\\n");
      await r.close();`;
    const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, "true\n");
  });
});

describe("terminal (listr2) reporter", () => {
  // A real pseudo-terminal from util-linux's script(1): listr2 draws in place there.
  const hasScript = spawnSync("script", ["--version"]).status === 0;
  test("draws one line per host that ends with its counts, then prints failures and the summary", { skip: !hasScript && "script(1) not installed" }, () => {
    const program = `
      const { createReporter, ListrReporter } = await import(${JSON.stringify(outputIndex)});
      const r = createReporter("text");
      if (!(r instanceof ListrReporter)) throw new Error("not the terminal reporter on a TTY");
      const events = ${JSON.stringify(events)};
      for (const e of events) { r.emit(e); await new Promise((s) => setTimeout(s, 20)); }
      await r.close();
      process.stdout.write("closed\\n");`;
    const env = { ...process.env };
    delete env.CI;
    const r = spawnSync("script", ["-qec", `stty cols 120 rows 40; ${process.execPath} --input-type=module -e '${program.replace(/'/g, "'\\''")}'`, "/dev/null"], {
      encoding: "utf8",
      env,
      timeout: 30_000,
    });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    // Strip cursor movement and colours: what remains is the text drawn.
    const text = r.stdout.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "").replace(/\r/g, "");
    assert.match(text, /master1: 1 changed, 0 unchanged/);
    assert.match(text, /node1: 0 changed, 1 unchanged, 1 failed, 1 skipped/);
    assert.match(text, /summary: 1 changed, 1 unchanged, 1 failed, 1 skipped in 2\.5s/);
    // Failure details and warnings in full once drawing stops.
    assert.match(text, /\[node1\] join\/apply: FAILED: command failed \(exit 1\)\n {4}kubeadm: line one\n {4}line two\n/);
    assert.match(text, /\[node1\] check swap: WARN swap is on/);
    assert.match(text, /closed\n/);
  });
});

describe("--timings", () => {
  // A clock the test moves: each event happens at the time set before it is emitted.
  const run = (steps: Array<[number, KubeprovEvent]>) => {
    let now = 0;
    const rec = new TimingsRecorder(() => now);
    for (const [t, e] of steps) {
      now = t;
      rec.emit(e);
    }
    return rec;
  };
  const start = (task: string, host: string, phase: string): KubeprovEvent => ({ type: "task-start", host, task, phase });
  const done = (task: string, host: string, phase: string, waitsFor?: string): KubeprovEvent => ({ type: "task", host, task, phase, status: "changed", durationMs: 0, ...(waitsFor ? { waitsFor } : {}) });
  const rec = run([
    [400, start("facts/gather", "cp1", "facts")],
    [400, start("facts/gather", "w1", "facts")],
    [600, done("facts/gather", "w1", "facts")],
    [900, done("facts/gather", "cp1", "facts")],
    [900, start("certs/pki", "cp1", "certs")],
    [905, start("prepare/images", "w1", "prepare")],
    [2000, done("prepare/images", "w1", "prepare")],
    [2900, done("certs/pki", "cp1", "certs")],
    [2910, start("wait-control-plane/readyz", "cp1", "wait-control-plane")],
    [9000, done("wait-control-plane/readyz", "cp1", "wait-control-plane", "the API server's /readyz")],
    [9500, start("addons/coredns", "cp1", "addons")],
    [10_000, done("addons/coredns", "cp1", "addons")],
    [10_000, { type: "task", host: "w1", task: "join/kubelet", phase: "join", status: "skipped", reason: "a dependency failed", durationMs: 0 }],
  ]);

  test("the critical path is the chain that ends last, each task starting as the one before it ended", () => {
    assert.deepEqual(criticalPath(rec.spans).map((s) => `${s.task}@${s.host}`), ["facts/gather@cp1", "certs/pki@cp1", "wait-control-plane/readyz@cp1", "addons/coredns@cp1"]);
    // A skipped task that never started takes no time and is not a span.
    assert.ok(!rec.spans.some((s) => s.task === "join/kubelet"));
  });

  test("tasks that take no time and end together (no-op checks on several hosts) end the path instead of looping", () => {
    const span = (task: string, host: string, startMs: number, endMs: number) => ({ task, host, phase: task.split("/")[0], startMs, endMs, status: "ok" });
    const spans = [span("facts/gather", "cp1", 100, 300), span("certs/pki", "cp1", 300, 300), span("certs/pki", "cp2", 300, 300), span("certs/pki", "cp3", 300, 300)];
    assert.deepEqual(criticalPath(spans).map((s) => `${s.task}@${s.host}`), ["facts/gather@cp1", "certs/pki@cp1"]);
  });

  test("the report gives each phase's start, end and duration, the path with its gaps, and the waits", () => {
    const text = rec.render();
    assert.match(text, /^  facts +0\.40 +0\.90 +0\.50$/m);
    assert.match(text, /^  wait-control-plane +2\.91 +9\.00 +6\.09$/m);
    assert.match(text, /^  \+ +0\.40 +0\.50 s  facts\/gather +cp1  \(after 0\.40 s of start-up, connecting and locking\)$/m);
    assert.match(text, /^  \+ +9\.50 +0\.50 s  addons\/coredns +cp1  \(after 0\.50 s outside tasks\)$/m);
    assert.match(text, /^waits .*\n +6\.09 s  wait-control-plane\/readyz on cp1: the API server's \/readyz \(from \+2\.91\)$/m);
    assert.equal(renderTimings([]), "timings: no task ran\n");
  });
});
