// --timings: where a run's seconds went. A reporter that records when each (task, host) started and
// ended, and a text report printed to stderr at the end of the run: each phase's start, end and
// duration, the critical path (the chain of tasks, ending with the last one to finish, in which
// each began when the one before it ended: shortening anything else does not shorten the run),
// and the tasks that spend their time waiting on something else (the API server, the kubelet,
// etcd), with what they waited on. Times are seconds since the kubeprov process started.
import { performance } from "node:perf_hooks";
import type { KubeprovEvent, Reporter } from "../events.js";

export interface TaskSpan {
  host: string;
  task: string;
  phase: string;
  startMs: number;
  endMs: number;
  status: string;
  waitsFor?: string;
}

let enabled = false;

/** Turns the report on for the runs of this process (the CLI's --timings). */
export function enableTimings(): void {
  enabled = true;
}

export function timingsEnabled(): boolean {
  return enabled;
}

export class TimingsRecorder implements Reporter {
  readonly spans: TaskSpan[] = [];
  private readonly starts = new Map<string, number>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  emit(e: KubeprovEvent): void {
    if (e.type === "task-start") this.starts.set(`${e.task}\u0000${e.host}`, this.now());
    if (e.type !== "task") return;
    const endMs = this.now();
    const key = `${e.task}\u0000${e.host}`;
    const startMs = this.starts.get(key) ?? endMs - e.durationMs;
    this.starts.delete(key);
    // Tasks skipped without starting (a failed dependency, a skipped phase) took no time.
    if (e.status === "skipped" && e.durationMs === 0) return;
    this.spans.push({ host: e.host, task: e.task, phase: e.phase, startMs, endMs, status: e.status, ...(e.waitsFor ? { waitsFor: e.waitsFor } : {}) });
  }

  async close(): Promise<void> {}

  render(): string {
    return renderTimings(this.spans);
  }
}

/** How close an end and a start must be to count as "began when the other ended". */
const TOUCH_MS = 50;

/** The chain of spans ending with the last to finish, each starting when the one before it ended. */
export function criticalPath(spans: readonly TaskSpan[]): TaskSpan[] {
  if (!spans.length) return [];
  const last = spans.reduce((a, b) => (b.endMs > a.endMs || (b.endMs === a.endMs && b.startMs > a.startMs) ? b : a));
  const path = [last];
  for (;;) {
    const head = path[0]!;
    let before: TaskSpan | undefined;
    // The task before must also have begun earlier: tasks that take no time and end together
    // (unchanged checks on several hosts) would otherwise each be the other's predecessor.
    for (const s of spans) if (s.startMs < head.startMs && s.endMs <= head.startMs + TOUCH_MS && (!before || s.endMs > before.endMs)) before = s;
    if (!before) return path;
    path.unshift(before);
  }
}

const sec = (ms: number) => (ms / 1000).toFixed(2);

export function renderTimings(spans: readonly TaskSpan[]): string {
  if (!spans.length) return "timings: no task ran\n";
  const phases = new Map<string, { startMs: number; endMs: number }>();
  for (const s of spans) {
    const p = phases.get(s.phase);
    if (!p) phases.set(s.phase, { startMs: s.startMs, endMs: s.endMs });
    else {
      p.startMs = Math.min(p.startMs, s.startMs);
      p.endMs = Math.max(p.endMs, s.endMs);
    }
  }
  const ordered = [...phases.entries()].sort((a, b) => a[1].startMs - b[1].startMs);
  const w = Math.max(5, ...ordered.map(([n]) => n.length));
  const out = ["timings (seconds since kubeprov started):", `  ${"phase".padEnd(w)}    start      end     took`];
  for (const [name, p] of ordered) out.push(`  ${name.padEnd(w)}  ${sec(p.startMs).padStart(7)}  ${sec(p.endMs).padStart(7)}  ${sec(p.endMs - p.startMs).padStart(7)}`);

  const path = criticalPath(spans);
  const tw = Math.max(...path.map((s) => s.task.length));
  out.push("critical path (each task began as the one before it ended; gaps are time outside tasks):");
  let prevEnd: number | undefined;
  for (const s of path) {
    const gap = prevEnd === undefined ? s.startMs : s.startMs - prevEnd;
    const gapText = gap > TOUCH_MS ? `  (after ${sec(gap)} s ${prevEnd === undefined ? "of start-up, connecting and locking" : "outside tasks"})` : "";
    out.push(`  +${sec(s.startMs).padStart(7)}  ${sec(s.endMs - s.startMs).padStart(6)} s  ${s.task.padEnd(tw)}  ${s.host}${s.waitsFor ? `  waited on ${s.waitsFor}` : ""}${gapText}`);
    prevEnd = s.endMs;
  }
  const waits = spans.filter((s) => s.waitsFor).sort((a, b) => b.endMs - b.startMs - (a.endMs - a.startMs));
  if (waits.length) {
    out.push("waits (tasks that spend their time waiting on something else), longest first:");
    for (const s of waits) out.push(`  ${sec(s.endMs - s.startMs).padStart(6)} s  ${s.task} on ${s.host}: ${s.waitsFor} (from +${sec(s.startMs)})`);
  }
  return out.join("\n") + "\n";
}
