// runPipeline: what every command that changes hosts does — connect to the hosts, take the lock,
// gather facts, run the tasks, end with the summary event, and always close the connections.
// Throws RunFailed (exit 1) naming every failed host/task when any task failed.
import { hostname, userInfo } from "node:os";
import { RunFailed, RuntimeFailure, UsageError } from "../errors.js";
import { TeeReporter, type Reporter } from "../events.js";
import { createReporter } from "../output/index.js";
import { TimingsRecorder, timingsEnabled } from "../output/timings.js";
import type { Cluster } from "../spec/schema.js";
import { closeHosts, connectHosts } from "./hosts.js";
import { createRunContext } from "./context.js";
import { acquireLock, describeHolder, type Lock, type LockOptions } from "./lock.js";
import { runTasks, validatePhases, validateTaskGraph, type RunSummary } from "./runner.js";
import type { Host, JoinTarget, RunContext, Task } from "./task.js";

export interface PipelineOptions {
  cluster: Cluster;
  /** The file the cluster came from, for messages. */
  source: string;
  tasks: Task[];
  /**
   * The task that gathers host facts (the facts phase): it runs first on every host, every other
   * task runs after it, and its phase cannot be skipped, since later tasks read what it gathers.
   * The caller passes it (commands: tasks/facts.ts's factsTask); the engine knows no task by name.
   */
  facts: Task;
  dryRun?: boolean;
  /** How events are drawn (text lines or JSON Lines); ignored when `reporter` is given. Default "text". */
  output?: "text" | "json";
  /** Limit for connecting and for running (task, host) nodes at once (default: the runner's, 64). */
  concurrency?: number;
  skipPhases?: string[];
  onlyPhases?: string[];
  /** Command-line options the tasks read. */
  options?: Record<string, unknown>;
  /** The cluster the hosts join when none of its own hosts is in the run (RunContext.joinTo). */
  joinTo?: JoinTarget;
  acceptNewHostKeys?: boolean;
  /** Take the cluster lock on the hosts (default true; never in a dry run, which writes nothing). */
  lock?: boolean;
  /** Use these already connected hosts instead of connecting; the caller closes them. */
  hosts?: Host[];
  /** Send events here instead of a reporter made from `output`; the caller closes it. */
  reporter?: Reporter;
  /** Emit the summary event at the end (default true): false when the caller sums several runs into one. */
  emitSummary?: boolean;
  /** Called with the run's summary before the pipeline returns or throws for failed tasks. */
  onSummary?: (summary: RunSummary) => void;
  /** Run after every task succeeded, on the run's own connections and context, before they (and the lock) are released. */
  afterRun?: (hosts: Host[], ctx: RunContext) => Promise<void>;
  /** Who holds the lock, for the message a second run sees. Default "user@machine pid N". */
  lockOwner?: string;
  /** Lock file path, stale time… (tests use their own lock file). */
  lockOptions?: LockOptions;
  /**
   * Stops starting new tasks when aborted. Default: the first Ctrl-C (SIGINT) during the run does
   * that (running tasks finish, connections and the lock are released); a second one quits at once.
   */
  signal?: AbortSignal;
}

export function defaultLockOwner(): string {
  let user = "unknown";
  try {
    user = userInfo().username;
  } catch {
    /* no passwd entry */
  }
  return `${user}@${hostname()} pid ${process.pid}`;
}

/** The tasks the pipeline runs: the facts task first (unless the list has it), then the given ones. */
export function pipelineTasks(tasks: Task[], facts: Task): Task[] {
  return tasks.some((t) => t.name === facts.name) ? tasks : [facts, ...tasks];
}

export async function runPipeline(opts: PipelineOptions): Promise<RunSummary> {
  const facts = opts.facts;
  const tasks = pipelineTasks(opts.tasks, facts);
  // Everything that can be wrong with the command line is found before any host is touched.
  validateTaskGraph(tasks, [facts.name]);
  validatePhases(tasks, opts);
  if (opts.skipPhases?.includes(facts.phase)) {
    throw new UsageError(`the "${facts.phase}" phase cannot be skipped: later tasks read what it gathers`);
  }
  const onlyPhases = opts.onlyPhases && opts.onlyPhases.length > 0 ? [...new Set([facts.phase, ...opts.onlyPhases])] : undefined;
  const dryRun = opts.dryRun ?? false;

  const base = opts.reporter ?? createReporter(opts.output ?? "text");
  // --timings: a copy of the events goes to a recorder whose report is printed at the end.
  const recorder = timingsEnabled() ? new TimingsRecorder() : undefined;
  const reporter = recorder ? new TeeReporter([base, recorder]) : base;
  // Stops starting new tasks: the caller's signal, the first Ctrl-C, or a lock taken over by another run.
  const ctrl = new AbortController();
  const onCallerAbort = () => ctrl.abort();
  if (opts.signal) {
    if (opts.signal.aborted) ctrl.abort();
    else opts.signal.addEventListener("abort", onCallerAbort, { once: true });
  }
  const onSigint = () => {
    reporter.emit({ type: "log", level: "warn", message: "interrupted: waiting for running tasks to finish (Ctrl-C again to quit now)" });
    process.removeListener("SIGINT", onSigint);
    ctrl.abort();
  };
  if (!opts.signal) process.on("SIGINT", onSigint);
  let lostLock: string | undefined;

  let hosts: Host[] | undefined = opts.hosts;
  let lock: Lock | undefined;
  let summary: RunSummary;
  try {
    if (!hosts) hosts = await connectHosts(opts.cluster, { acceptNewHostKeys: opts.acceptNewHostKeys, concurrency: opts.concurrency });
    if ((opts.lock ?? true) && !dryRun) {
      lock = await acquireLock(hosts, opts.lockOwner ?? defaultLockOwner(), {
        ...opts.lockOptions,
        onLost: (h) => {
          lostLock ??= h.name;
          reporter.emit({ type: "log", level: "error", message: "the cluster lock was taken over by another run: starting no more tasks", host: h.name });
          ctrl.abort();
          opts.lockOptions?.onLost?.(h);
        },
      });
      for (const t of lock.takenOver) {
        reporter.emit({ type: "log", level: "warn", message: `took over a stale lock held by ${describeHolder(t.previous)}`, host: t.host });
      }
    }
    const ctx = createRunContext({ cluster: opts.cluster, source: opts.source, hosts, reporter, dryRun, options: opts.options, joinTo: opts.joinTo });
    summary = await runTasks(tasks, ctx, {
      concurrency: opts.concurrency,
      skipPhases: opts.skipPhases,
      onlyPhases,
      prerequisites: [facts.name],
      signal: ctrl.signal,
      emitSummary: opts.emitSummary,
    });
    opts.onSummary?.(summary);
    if (opts.afterRun && summary.failed === 0 && !summary.interrupted) await opts.afterRun(hosts, ctx);
  } finally {
    process.removeListener("SIGINT", onSigint);
    opts.signal?.removeEventListener("abort", onCallerAbort);
    if (lock) {
      try {
        await lock.release();
      } catch (e) {
        reporter.emit({ type: "log", level: "warn", message: `could not release the lock: ${(e as Error).message}` });
      }
    }
    if (!opts.hosts && hosts) await closeHosts(hosts);
    if (!opts.reporter) await base.close();
    if (recorder) process.stderr.write(recorder.render());
  }
  if (summary.failed > 0) {
    throw new RunFailed(summary.results.filter((r) => r.status === "failed").map((r) => ({ host: r.host, task: r.task, error: r.error, details: r.details })));
  }
  if (summary.interrupted) {
    const notRun = summary.results.filter((r) => r.reason === "interrupted").length;
    const why = lostLock ? `the cluster lock on ${lostLock} was taken over by another run` : "interrupted";
    throw new RuntimeFailure(`${why}: ${notRun} task${notRun === 1 ? "" : "s"} not run; run the command again to finish`);
  }
  return summary;
}
