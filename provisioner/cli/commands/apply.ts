// kubeprov apply -f FILE|--name NAME: converge the cluster to its file with one plan for every
// topology: init on the first control plane when the cluster does not exist yet, the other control
// planes joined one at a time (stacked etcd), then the workers. Every phase is idempotent: a
// converged cluster reports 0 changed. With --prune, afterwards, Nodes of the cluster that the file
// no longer lists leave it (lifecycle/prune.ts): after the joins, so a control plane replaced in
// the file is added before the old one goes and etcd keeps its quorum.
import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import { loadTarget } from "../target.js";
import { parsePositiveInt, runOptions, type CommonOptions } from "../options.js";
import { runPipeline } from "../../engine/pipeline.js";
import { factsTask } from "../../tasks/facts.js";
import { clusterTasks } from "../../plan/cluster.js";
import { collectIds, validateIgnorePreflightErrors } from "../../tasks/preflight.js";
import { clusterQuorumWarning } from "../../plan/topology.js";
import { createReporter } from "../../output/index.js";
import { summaryEvent, type RunSummary } from "../../engine/runner.js";
import { DEFAULT_DRAIN_TIMEOUT_S } from "../../lifecycle/remove-node.js";
import { nodesNotInFile, pruneNodes, PRUNE_TASK } from "../../lifecycle/prune.js";

interface ApplyOptions extends CommonOptions {
  skipPhases?: string[];
  ignorePreflightErrors?: string[];
  prune: boolean;
  force: boolean;
  drainTimeout: number;
}

export function register(program: Command): void {
  runOptions(program.command("apply").description("converge the cluster to its file: the first control plane, the other control planes one at a time, then the workers (--prune: nodes not in the file leave)"))
    .option("--skip-phases <phases>", "comma-separated phases not to run", (v: string) => v.split(",").map((s) => s.trim()).filter(Boolean))
    .option("--ignore-preflight-errors <ids>", "preflight check IDs whose failures become warnings (comma separated), or all", collectIds)
    .option("--prune", "afterwards, Nodes of the cluster that the file does not list are drained, removed (etcd member, Node object) and reset", false)
    .option("--force", "with --prune: go on when draining times out, a node is unreachable or etcd would lose its quorum", false)
    .option("--drain-timeout <seconds>", "with --prune: how long draining a node may take", parsePositiveInt, DEFAULT_DRAIN_TIMEOUT_S)
    .action(async (o: ApplyOptions, cmd: Command) => {
      // --force and --drain-timeout only say how nodes leave: alone they would be silently ignored.
      const pruneOnly = ["force", "drainTimeout"].filter((k) => cmd.getOptionValueSource(k) === "cli");
      if (!o.prune && pruneOnly.length) throw new UsageError(`${pruneOnly.map((k) => (k === "force" ? "--force" : "--drain-timeout")).join(" and ")}: only with --prune (they say how nodes leave the cluster)`);
      const ignorePreflightErrors = validateIgnorePreflightErrors(o.ignorePreflightErrors);
      const { cluster, source } = await loadTarget(o);
      const warning = clusterQuorumWarning(cluster);
      if (warning) process.stderr.write(`warning: ${source}: ${warning}\n`);
      const converge = {
        cluster,
        source,
        tasks: clusterTasks("all"),
        facts: factsTask,
        dryRun: o.dryRun,
        concurrency: o.concurrency,
        skipPhases: o.skipPhases,
        options: { ignorePreflightErrors, verbose: o.verbose ?? 0 },
      };
      if (!o.prune) {
        await runPipeline({ ...converge, output: o.output });
        return;
      }
      // One event stream and one summary for the converge and the prune.
      const started = Date.now();
      const reporter = createReporter(o.output ?? "text");
      const total: RunSummary = { changed: 0, unchanged: 0, failed: 0, skipped: 0, durationMs: 0, dryRun: Boolean(o.dryRun), results: [] };
      const add = (s: RunSummary) => {
        total.changed += s.changed;
        total.unchanged += s.unchanged;
        total.failed += s.failed;
        total.skipped += s.skipped;
      };
      const log = (message: string) => reporter.emit({ type: "log", level: "info", message });
      try {
        await runPipeline({ ...converge, reporter, emitSummary: false, onSummary: add });
        const leavers = await nodesNotInFile(cluster);
        if (!leavers.length) log(`--prune: every Node of the cluster is in ${source}`);
        for (const l of o.dryRun ? leavers : []) {
          reporter.emit({ type: "task", host: l.name, task: PRUNE_TASK, phase: "prune", status: "changed", dryRun: true, reason: `not in ${source}: would be drained, removed and reset`, durationMs: 0 });
          total.changed++;
        }
        if (!o.dryRun && leavers.length)
          await pruneNodes(cluster, leavers, { source, reporter, concurrency: o.concurrency, onSummary: add, force: o.force, drainTimeoutS: o.drainTimeout, log });
      } finally {
        reporter.emit(summaryEvent({ ...total, durationMs: Date.now() - started }));
        await reporter.close();
      }
    });
}
