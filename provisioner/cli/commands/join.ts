// kubeprov join -f FILE|--name NAME: the workers listed in the cluster file join the cluster that
// `kubeprov init` made on its first control plane (kubeadm join: TLS bootstrap with a bootstrap
// token). Idempotent: joined hosts report nothing to do. Joining control planes is not implemented yet.
import type { Command } from "commander";
import { loadTarget } from "../target.js";
import { runOptions, type CommonOptions } from "../options.js";
import { validateTokenOptions } from "../../tasks/bootstrap.js";
import { collectIds, validateIgnorePreflightErrors } from "../../tasks/preflight.js";

export function register(program: Command): void {
  runOptions(program.command("join").description("join the cluster file's workers to the cluster init made (TLS bootstrap with a bootstrap token)"))
    .option("--token <token>", "bootstrap token to use ([a-z0-9]{6}.[a-z0-9]{16}; default: a valid existing one, else a new one)")
    .option("--ignore-preflight-errors <ids>", "preflight check IDs whose failures become warnings (comma separated), or all", collectIds)
    .action(async (o: CommonOptions & { token?: string; ignorePreflightErrors?: string[] }) => {
      validateTokenOptions({ token: o.token });
      const ignorePreflightErrors = validateIgnorePreflightErrors(o.ignorePreflightErrors);
      const { cluster, source } = await loadTarget(o);
      const { joinTasks } = await import("../../plan/join.js");
      const { runPipeline } = await import("../../engine/pipeline.js");
      await runPipeline({
        cluster,
        source,
        tasks: joinTasks(),
        dryRun: o.dryRun,
        output: o.output,
        concurrency: o.concurrency,
        options: { ...(o.token ? { token: o.token } : {}), ignorePreflightErrors, verbose: o.verbose ?? 0 },
      });
    });
}
