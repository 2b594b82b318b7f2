// kubeprov apply -f FILE|--name NAME: converge the cluster to its file: init on the first control
// plane, then join the workers (every phase idempotent: a converged cluster reports 0 changed).
// Joining more control planes (HA) is not implemented yet: apply says so before touching any host.
import type { Command } from "commander";
import { RuntimeFailure } from "../../errors.js";
import { loadTarget } from "../target.js";
import { runOptions, type CommonOptions } from "../options.js";
import { runPipeline } from "../../engine/pipeline.js";
import { initTasks } from "../../plan/init.js";
import { CONTROL_PLANE_JOIN, joinTasks } from "../../plan/join.js";
import { collectIds, validateIgnorePreflightErrors } from "../../tasks/preflight.js";

interface ApplyOptions extends CommonOptions {
  skipPhases?: string[];
  ignorePreflightErrors?: string[];
}

export function register(program: Command): void {
  runOptions(program.command("apply").description("converge the cluster to its file: init on the first control plane, then join the workers"))
    .option("--skip-phases <phases>", "comma-separated phases not to run", (v: string) => v.split(",").map((s) => s.trim()).filter(Boolean))
    .option("--ignore-preflight-errors <ids>", "preflight check IDs whose failures become warnings (comma separated), or all", collectIds)
    .action(async (o: ApplyOptions) => {
      const ignorePreflightErrors = validateIgnorePreflightErrors(o.ignorePreflightErrors);
      const { cluster, source } = await loadTarget(o);
      const controlPlanes = cluster.spec.hosts.filter((h) => h.roles.includes("control-plane"));
      if (controlPlanes.length > 1 && !CONTROL_PLANE_JOIN) {
        throw new RuntimeFailure(
          `${source}: ${controlPlanes.length} control planes (${controlPlanes.map((h) => h.name).join(", ")}); joining control planes after the first is not implemented yet, so nothing was changed`,
        );
      }
      const common = { cluster, source, dryRun: o.dryRun, output: o.output, concurrency: o.concurrency, options: { ignorePreflightErrors, verbose: o.verbose ?? 0 } };
      await runPipeline({ ...common, tasks: initTasks(), skipPhases: o.skipPhases });
      if (cluster.spec.hosts.length > 1) await runPipeline({ ...common, tasks: joinTasks() });
    });
}
