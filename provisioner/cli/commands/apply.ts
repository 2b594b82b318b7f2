// kubeprov apply -f FILE|--name NAME: converge the cluster to its file. For now that is init on the
// first control plane (every phase idempotent: a converged cluster reports 0 changed); joining the
// other hosts is not implemented yet, and apply says so (exit 1) instead of pretending.
import type { Command } from "commander";
import { RuntimeFailure } from "../../errors.js";
import { loadTarget } from "../target.js";
import { runOptions, type CommonOptions } from "../options.js";

export function register(program: Command): void {
  runOptions(program.command("apply").description("converge the cluster to its file (today: init on the first control plane; joining other hosts is not implemented yet)"))
    .option("--skip-phases <phases>", "comma-separated phases not to run", (v: string) => v.split(",").map((s) => s.trim()).filter(Boolean))
    .action(async (o: CommonOptions & { skipPhases?: string[] }) => {
      const { cluster, source } = await loadTarget(o);
      const first = cluster.spec.hosts.find((h) => h.roles.includes("control-plane"));
      if (!first) throw new RuntimeFailure(`${source}: the cluster has no host with role control-plane`);
      const { initTasks } = await import("../../plan/init.js");
      const { runPipeline } = await import("../../engine/pipeline.js");
      await runPipeline({ cluster, source, tasks: initTasks(), dryRun: o.dryRun, output: o.output, concurrency: o.concurrency, skipPhases: o.skipPhases, options: { verbose: o.verbose ?? 0 } });
      const others = cluster.spec.hosts.filter((h) => h.name !== first.name).map((h) => h.name);
      if (others.length) {
        throw new RuntimeFailure(
          `apply converged the first control plane ${first.name}; joining ${others.join(", ")} is not implemented yet`,
          "use `kubeprov join` when it exists, or the kubeadm join command printed by `kubeprov token create --print-join-command`",
        );
      }
    });
}
