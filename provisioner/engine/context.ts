// The state one run shares between its tasks: the cluster, the hosts, where events go, dry run,
// command-line options, and a map for values tasks hand each other (e.g. a bootstrap token).
import type { Reporter } from "../events.js";
import type { Cluster } from "../spec/schema.js";
import type { Host, JoinTarget, RunContext } from "./task.js";

export interface RunContextInit {
  cluster: Cluster;
  /** The file the cluster came from, for messages ("<generated>" when made by a driver). */
  source?: string;
  hosts: Host[];
  reporter: Reporter;
  dryRun?: boolean;
  /** Command-line options tasks read (ignorePreflightErrors, fix, …). */
  options?: Record<string, unknown>;
  /** The cluster the hosts join when none of its own hosts is in the run. */
  joinTo?: JoinTarget;
}

export function createRunContext(init: RunContextInit): RunContext {
  const { reporter } = init;
  return {
    cluster: init.cluster,
    source: init.source ?? "<generated>",
    hosts: init.hosts,
    reporter,
    dryRun: init.dryRun ?? false,
    shared: new Map<string, unknown>(),
    options: { ...(init.options ?? {}) },
    ...(init.joinTo ? { joinTo: init.joinTo } : {}),
    log(level, message, host, task) {
      reporter.emit({ type: "log", level, message, ...(host ? { host: host.name } : {}), ...(task ? { task } : {}) });
    },
  };
}
