// The runner: turns tasks into a graph of (task, host) nodes and runs it — parallel across hosts
// and independent tasks within a concurrency limit, in order where `after` or `serial` says so.
// Per node: check (read-only), then apply only when needed and not a dry run. A failure stops the
// node's dependents (reported skipped, naming the failure); everything else goes on. The runner
// never prints: it emits events to ctx.reporter and returns a summary.
import { performance } from "node:perf_hooks";
import { isKubeprovError, UsageError } from "../errors.js";
import type { KubeprovEvent, TaskStatus } from "../events.js";
import type { CheckResult, Host, RunContext, Task } from "./task.js";

/** Default number of (task, host) nodes running at once: plenty for hundreds of hosts over one SSH connection each. */
export const DEFAULT_CONCURRENCY = 64;

export interface RunOptions {
  /** At most this many (task, host) nodes run at once (default 64). */
  concurrency?: number;
  /** Phases not to run (like kubeadm --skip-phases): their tasks are reported skipped, their dependents still run. */
  skipPhases?: string[];
  /** Run only these phases; every other task is reported skipped. */
  onlyPhases?: string[];
  /**
   * Names of tasks that every other task waits for on all their hosts, as if each named them in
   * `after` (the pipeline uses this for the facts task).
   */
  prerequisites?: string[];
  /** Emit the summary event at the end (default true). */
  emitSummary?: boolean;
  /**
   * Stop starting new work when aborted (e.g. on Ctrl-C): nodes not yet started are reported
   * skipped ("interrupted"), running ones finish (a half-done apply is worse than a finished one).
   */
  signal?: AbortSignal;
}

/** What happened to one task on one host: the "task" event without its type. */
export type TaskResult = Omit<Extract<KubeprovEvent, { type: "task" }>, "type">;

export interface RunSummary {
  changed: number;
  /** Nodes whose status is ok. */
  unchanged: number;
  failed: number;
  skipped: number;
  durationMs: number;
  dryRun: boolean;
  /** The run was aborted through opts.signal before every node ran. */
  interrupted?: boolean;
  /** One entry per (task, host), in task order then host order. */
  results: TaskResult[];
}

/** The task list itself is wrong (unknown or cyclic `after`, duplicate names): a programming error. */
export class TaskGraphError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "TaskGraphError";
  }
}

/** Checks names are unique, `after` names exist and there is no cycle. Throws TaskGraphError. */
export function validateTaskGraph(tasks: Task[], prerequisites: string[] = []): void {
  const byName = new Map<string, Task>();
  for (const t of tasks) {
    if (!t.name) throw new TaskGraphError("a task has no name");
    if (byName.has(t.name)) throw new TaskGraphError(`two tasks are named "${t.name}"`);
    byName.set(t.name, t);
  }
  for (const p of prerequisites) {
    if (!byName.has(p)) throw new TaskGraphError(`prerequisite task "${p}" is not in the task list`);
  }
  for (const t of tasks) {
    for (const a of t.after ?? []) {
      if (!byName.has(a)) throw new TaskGraphError(`task "${t.name}" runs after "${a}", which is not in the task list`);
      if (a === t.name) throw new TaskGraphError(`task "${t.name}" runs after itself`);
    }
  }
  // Depth-first search for a cycle; report it as a -> b -> a.
  const state = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const visit = (name: string) => {
    const s = state.get(name);
    if (s === "done") return;
    if (s === "visiting") {
      const cycle = [...stack.slice(stack.indexOf(name)), name];
      throw new TaskGraphError(`tasks depend on each other in a cycle: ${cycle.join(" -> ")}`);
    }
    state.set(name, "visiting");
    stack.push(name);
    for (const a of byName.get(name)!.after ?? []) visit(a);
    stack.pop();
    state.set(name, "done");
  };
  for (const t of tasks) visit(t.name);
}

/** The phases of these tasks, in first-seen order. */
export function phasesOf(tasks: Task[]): string[] {
  return [...new Set(tasks.map((t) => t.phase))];
}

/** Throws UsageError (exit 2) when --skip-phases or --only-phases names a phase none of the tasks has. */
export function validatePhases(tasks: Task[], opts: { skipPhases?: string[]; onlyPhases?: string[] }): void {
  const known = phasesOf(tasks);
  const check = (list: string[] | undefined, flag: string) => {
    const unknown = (list ?? []).filter((p) => !known.includes(p));
    if (unknown.length > 0) {
      const what = unknown.map((p) => `"${p}"`).join(", ");
      throw new UsageError(`unknown phase${unknown.length > 1 ? "s" : ""} ${what} in ${flag}; the phases of this command are: ${known.join(", ")}`);
    }
  };
  check(opts.skipPhases, "--skip-phases");
  check(opts.onlyPhases, "--only-phases");
}

/** A task's nodes as one group: dependents that wait for the task on ALL its hosts hang here. */
interface Group {
  task: Task;
  nodes: Node[];
  /** Nodes not finished yet (ok, changed, or phase-skipped count as finished). */
  left: number;
  /** Nodes waiting for every node of this task (one entry per node, not per pair: O(hosts)). */
  waiters: Node[];
  /** Dry run: some node of this task (or upstream of it) would change. */
  change?: string;
  /** Some node of this task (or upstream of it) applied a change in this run. */
  applied?: boolean;
}

interface Node {
  task: Task;
  taskIndex: number;
  host: Host;
  hostIndex: number;
  group: Group;
  /** Nodes waiting for this one alone (same-host `after` with perHost, the next host of a serial task). */
  dependents: Node[];
  /** Unfinished single dependencies + unfinished groups this node waits for. */
  waiting: number;
  state: "pending" | "queued" | "running" | "done";
  /** Dry run: an upstream node would change ("task on host"), so this node's check may see an old state. */
  upstreamChange?: string;
  /** A node this one comes after (directly or not) applied a change in this run. */
  upstreamApplied?: boolean;
  /** The check run ahead of its turn (task.checkAhead); undefined inside when it threw or answered nothing. */
  ahead?: Promise<CheckResult | undefined>;
}

/** Checks run ahead of their turn at once on one host (beside the regular work). */
export const CHECKS_AHEAD_PER_HOST = 2;

/** Builds the node graph. Host lists come from task.hosts(ctx), evaluated once, before any task runs. */
function buildGraph(tasks: Task[], ctx: RunContext, prerequisites: string[]): Node[] {
  const groups = new Map<string, Group>();
  const all: Node[] = [];
  tasks.forEach((task, taskIndex) => {
    const seen = new Set<string>();
    const hosts = task.hosts(ctx).filter((h) => (seen.has(h.name) ? false : (seen.add(h.name), true)));
    const group: Group = { task, nodes: [], left: hosts.length, waiters: [] };
    group.nodes = hosts.map((host, hostIndex): Node => ({ task, taskIndex, host, hostIndex, group, dependents: [], waiting: 0, state: "pending" }));
    groups.set(task.name, group);
    all.push(...group.nodes);
  });
  const prereq = new Set(prerequisites);
  for (const task of tasks) {
    const nodes = groups.get(task.name)!.nodes;
    const after = [...new Set([...(prereq.has(task.name) ? [] : prerequisites), ...(task.after ?? [])])];
    nodes.forEach((node, i) => {
      for (const name of after) {
        const theirs = groups.get(name)!;
        if (theirs.nodes.length === 0) continue; // a task on no host holds nothing up
        const same = task.perHost ? theirs.nodes.find((n) => n.host.name === node.host.name) : undefined;
        if (same) same.dependents.push(node);
        else theirs.waiters.push(node);
        node.waiting++;
      }
      if (task.serial && i > 0) {
        nodes[task.serial === "first" ? 0 : i - 1].dependents.push(node);
        node.waiting++;
      }
    });
  }
  return all;
}

function errorInfo(e: unknown): { error: string; details?: string } {
  if (isKubeprovError(e)) return { error: e.message, details: e.details };
  const err = e as Error;
  const message = err?.message ?? String(e);
  return { error: message, details: process.env.KUBEPROV_DEBUG ? err?.stack : undefined };
}

/**
 * Runs the tasks on their hosts and returns what happened. Throws TaskGraphError for a wrong task
 * list and UsageError for unknown phases, both before anything runs. Task failures do not throw:
 * they are in the summary (failed > 0).
 */
export async function runTasks(tasks: Task[], ctx: RunContext, opts: RunOptions = {}): Promise<RunSummary> {
  const started = performance.now();
  const prerequisites = opts.prerequisites ?? [];
  validateTaskGraph(tasks, prerequisites);
  validatePhases(tasks, opts);
  const limit = Math.floor(opts.concurrency ?? DEFAULT_CONCURRENCY);
  if (!Number.isFinite(limit) || limit < 1) throw new UsageError(`concurrency must be a whole number of at least 1, not ${opts.concurrency}`);
  const only = opts.onlyPhases && opts.onlyPhases.length > 0 ? new Set(opts.onlyPhases) : undefined;
  const skip = new Set(opts.skipPhases ?? []);
  const selected = (phase: string) => (!only || only.has(phase)) && !skip.has(phase);

  const nodes = buildGraph(tasks, ctx, prerequisites);
  const results = new Map<Node, TaskResult>();
  const reporter = ctx.reporter;

  const record = (node: Node, r: Omit<TaskResult, "host" | "task" | "phase">) => {
    const waited = r.status === "changed" && !r.dryRun && node.task.waitsFor ? { waitsFor: node.task.waitsFor } : {};
    const result: TaskResult = { host: node.host.name, task: node.task.name, phase: node.task.phase, ...r, ...waited };
    results.set(node, result);
    reporter.emit({ type: "task", ...result });
  };

  let interrupted = false;
  let onAbort = () => {};
  // Ends what task.prepare started once the run is over.
  const prepared = new AbortController();
  await new Promise<void>((resolve) => {
    let remaining = nodes.length;
    let running = 0;
    let anyApplied = false;
    const prereqNames = new Set(prerequisites);
    const prereqNodes = new Set(nodes.filter((n) => prereqNames.has(n.task.name)));
    let prereqLeft = prereqNodes.size;
    const aheadQueues = new Map<string, Node[]>();
    for (const n of nodes) {
      if (!n.task.checkAhead || !selected(n.task.phase)) continue;
      const q = aheadQueues.get(n.host.name) ?? [];
      q.push(n);
      aheadQueues.set(n.host.name, q);
    }
    const aheadRunning = new Map<string, number>();
    const ready: Node[] = [];
    let head = 0; // ready[head..] are waiting for a slot

    const release = (d: Node, change: string | undefined, applied: boolean | undefined) => {
      if (change && !d.upstreamChange) d.upstreamChange = change;
      if (applied) d.upstreamApplied = true;
      if (d.state !== "pending") return;
      d.waiting--;
      if (d.waiting === 0) enqueue(d);
    };

    // A node finished without failing (ok, changed or phase-skipped): release what waits for it.
    const finish = (node: Node) => {
      node.state = "done";
      remaining--;
      const r = results.get(node);
      const change = node.upstreamChange ?? (r?.status === "changed" && r.dryRun ? `${node.task.name} on ${node.host.name}` : undefined);
      const applied = node.upstreamApplied || (r?.status === "changed" && !r.dryRun);
      if (r?.status === "changed" && !r.dryRun) anyApplied = true;
      const g = node.group;
      if (change && !g.change) g.change = change;
      if (applied) g.applied = true;
      g.left--;
      for (const d of node.dependents) release(d, change, applied);
      if (g.left === 0) for (const d of g.waiters) release(d, g.change, g.applied);
      if (prereqNodes.has(node) && --prereqLeft === 0) {
        startPrepare();
        pumpAhead();
      }
    };

    // task.prepare on every host of a selected task, once the prerequisites are done (not in a dry run).
    const startPrepare = () => {
      if (ctx.dryRun || interrupted) return;
      for (const n of nodes) {
        if (n.task.prepare && n.state === "pending" && selected(n.task.phase)) void n.task.prepare(n.host, ctx, prepared.signal).catch(() => {});
      }
    };

    // Checks ahead of their turn (task.checkAhead): once the prerequisites are done, in task order,
    // a few per host at a time, and only while nothing in the run has changed anything (after a
    // change they would mostly be asked again anyway).
    const pumpAhead = () => {
      if (prereqLeft > 0 || anyApplied || interrupted) return;
      for (const [hostName, queue] of aheadQueues) {
        while ((aheadRunning.get(hostName) ?? 0) < CHECKS_AHEAD_PER_HOST && queue.length) {
          const n = queue.shift()!;
          if (n.state !== "pending" || n.ahead) continue;
          aheadRunning.set(hostName, (aheadRunning.get(hostName) ?? 0) + 1);
          n.ahead = n.task
            .check(n.host, ctx)
            .then(
              (c) => (c && typeof c.needed === "boolean" ? c : undefined),
              () => undefined,
            )
            .finally(() => {
              aheadRunning.set(hostName, aheadRunning.get(hostName)! - 1);
              pumpAhead();
            });
        }
      }
    };

    // Every node that (transitively) depends on a failed node is skipped, naming the failure. A
    // task that cannot finish on all its hosts never releases the nodes waiting for all of them.
    const skipDependents = (failed: Node) => {
      failed.state = "done";
      remaining--;
      const reason = `skipped: ${failed.task.name} failed on ${failed.host.name}`;
      const queue: Node[] = [...failed.dependents, ...failed.group.waiters];
      const doneGroups = new Set<Group>([failed.group]);
      for (let i = 0; i < queue.length; i++) {
        const d = queue[i];
        if (d.state !== "pending") continue;
        d.state = "done";
        remaining--;
        record(d, { status: "skipped", reason, durationMs: 0 });
        queue.push(...d.dependents);
        if (!doneGroups.has(d.group)) {
          doneGroups.add(d.group);
          queue.push(...d.group.waiters);
        }
      }
    };

    const enqueue = (node: Node) => {
      if (node.state !== "pending") return;
      if (!selected(node.task.phase)) {
        record(node, { status: "skipped", reason: `phase "${node.task.phase}" skipped`, durationMs: 0 });
        finish(node);
        return;
      }
      node.state = "queued";
      ready.push(node);
    };

    const pump = () => {
      while (running < limit && head < ready.length && !interrupted) {
        const node = ready[head++];
        node.state = "running";
        running++;
        void runNode(node, ctx, record)
          .catch((e: unknown) => {
            // Only a throwing reporter gets here; keep the run's bookkeeping straight anyway.
            if (!results.has(node)) results.set(node, { host: node.host.name, task: node.task.name, phase: node.task.phase, status: "failed", ...errorInfo(e), durationMs: 0 });
            return "failed" as const;
          })
          .then((status) => {
            running--;
            if (status === "failed") skipDependents(node);
            else finish(node);
            pump();
          });
      }
      if (remaining === 0 && running === 0) resolve();
    };

    const interrupt = () => {
      if (interrupted) return;
      interrupted = true;
      for (const n of nodes) {
        if (n.state !== "pending" && n.state !== "queued") continue;
        n.state = "done";
        remaining--;
        record(n, { status: "skipped", reason: "interrupted", durationMs: 0 });
      }
      if (remaining === 0 && running === 0) resolve();
    };
    onAbort = interrupt;
    if (opts.signal) {
      if (opts.signal.aborted) interrupt();
      else opts.signal.addEventListener("abort", onAbort, { once: true });
    }

    // Take the initial set first: enqueuing a phase-skipped node can make others ready.
    for (const n of nodes.filter((x) => x.waiting === 0)) if (n.state === "pending") enqueue(n);
    if (prereqLeft === 0) startPrepare();
    pumpAhead();
    pump();
  }).finally(() => {
    opts.signal?.removeEventListener("abort", onAbort);
    prepared.abort();
  });

  const ordered = [...nodes]
    .sort((a, b) => a.taskIndex - b.taskIndex || a.hostIndex - b.hostIndex)
    .map((n) => results.get(n))
    .filter((r): r is TaskResult => r !== undefined);
  const count = (s: TaskStatus) => ordered.filter((r) => r.status === s).length;
  const summary: RunSummary = {
    changed: count("changed"),
    unchanged: count("ok"),
    failed: count("failed"),
    skipped: count("skipped"),
    durationMs: Math.round(performance.now() - started),
    dryRun: ctx.dryRun,
    ...(interrupted ? { interrupted: true } : {}),
    results: ordered,
  };
  if (opts.emitSummary !== false) reporter.emit(summaryEvent(summary));
  return summary;
}

/** The summary event for a run summary. */
export function summaryEvent(s: RunSummary) {
  return {
    type: "summary" as const,
    changed: s.changed,
    unchanged: s.unchanged,
    failed: s.failed,
    skipped: s.skipped,
    durationMs: s.durationMs,
    ...(s.dryRun ? { dryRun: true } : {}),
  };
}

/** Runs one (task, host) node: check, then apply when needed (and not a dry run). Never throws. */
async function runNode(
  node: Node,
  ctx: RunContext,
  record: (node: Node, r: Omit<TaskResult, "host" | "task" | "phase">) => void,
): Promise<TaskStatus> {
  const { task, host } = node;
  const t0 = performance.now();
  const ms = () => Math.round(performance.now() - t0);
  ctx.reporter.emit({ type: "task-start", host: host.name, task: task.name, phase: task.phase });

  // A check run ahead holds while nothing this node comes after changed anything since.
  const ahead = node.ahead && !node.upstreamApplied && !node.upstreamChange ? await node.ahead : undefined;
  let check: CheckResult;
  try {
    check = ahead ?? (await task.check(host, ctx));
    if (!check || typeof check.needed !== "boolean") throw new TaskGraphError(`task "${task.name}": check returned no {needed}`);
  } catch (e) {
    if (ctx.dryRun && node.upstreamChange) {
      // In a dry run nothing upstream was applied, so this check may fail only for that reason
      // (e.g. it reads a CA the dry run did not write): report it as a change to come.
      const reason = `would run after ${node.upstreamChange} changes (its check cannot tell before that: ${errorInfo(e).error.split("\n")[0]})`;
      record(node, { status: "changed", dryRun: true, reason, durationMs: ms() });
      return "changed";
    }
    record(node, { status: "failed", ...errorInfo(e), durationMs: ms() });
    return "failed";
  }

  if (!check.needed) {
    record(node, { status: "ok", ...(check.reason ? { reason: check.reason } : {}), durationMs: ms() });
    return "ok";
  }
  if (ctx.dryRun && !task.readOnly) {
    record(node, { status: "changed", dryRun: true, reason: check.reason ?? "would change", durationMs: ms() });
    return "changed";
  }
  try {
    const applied = await task.apply(host, ctx);
    const reason = (applied && applied.detail) || check.reason;
    const status: TaskStatus = task.readOnly ? "ok" : "changed";
    record(node, { status, ...(reason ? { reason } : {}), durationMs: ms() });
    return status;
  } catch (e) {
    const info = errorInfo(e);
    if (task.cleanup) {
      try {
        await task.cleanup(host, ctx);
      } catch (ce) {
        ctx.log("warn", `cleanup after the failure did not complete: ${errorInfo(ce).error}`, host, task.name);
      }
    }
    record(node, { status: "failed", ...info, durationMs: ms() });
    return "failed";
  }
}
