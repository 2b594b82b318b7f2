// kubeprov apply -f FILE|--name NAME: converge the cluster to its file with one plan for every
// topology: init on the first control plane when the cluster does not exist yet, the other control
// planes joined one at a time (stacked etcd), then the workers. Every phase is idempotent: a
// converged cluster reports 0 changed.
import type { Command } from "commander";
import { loadTarget } from "../target.js";
import { runOptions, type CommonOptions } from "../options.js";
import { runPipeline } from "../../engine/pipeline.js";
import { clusterTasks } from "../../plan/cluster.js";
import { collectIds, validateIgnorePreflightErrors } from "../../tasks/preflight.js";
import { controlPlaneQuorumWarning } from "../../plan/topology.js";

interface ApplyOptions extends CommonOptions {
  skipPhases?: string[];
  ignorePreflightErrors?: string[];
}

export function register(program: Command): void {
  runOptions(program.command("apply").description("converge the cluster to its file: the first control plane, the other control planes one at a time, then the workers"))
    .option("--skip-phases <phases>", "comma-separated phases not to run", (v: string) => v.split(",").map((s) => s.trim()).filter(Boolean))
    .option("--ignore-preflight-errors <ids>", "preflight check IDs whose failures become warnings (comma separated), or all", collectIds)
    .action(async (o: ApplyOptions) => {
      const ignorePreflightErrors = validateIgnorePreflightErrors(o.ignorePreflightErrors);
      const { cluster, source } = await loadTarget(o);
      const warning = controlPlaneQuorumWarning(cluster.spec.hosts.filter((h) => h.roles.includes("control-plane")).length);
      if (warning) process.stderr.write(`warning: ${source}: ${warning}\n`);
      await runPipeline({
        cluster,
        source,
        tasks: clusterTasks("all"),
        dryRun: o.dryRun,
        output: o.output,
        concurrency: o.concurrency,
        skipPhases: o.skipPhases,
        options: { ignorePreflightErrors, verbose: o.verbose ?? 0 },
      });
    });
}
