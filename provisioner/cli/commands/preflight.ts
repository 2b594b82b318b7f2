// kubeprov preflight -f FILE|--name NAME [--fix] [--ignore-preflight-errors=ID,ID|all] [-o json]:
// kubeadm's preflight checks on every host of the cluster (by role); with --fix, repairs first.
import type { Command } from "commander";
import { runPipeline } from "../../engine/pipeline.js";
import { factsTask } from "../../tasks/facts.js";
import { collectIds as collect, preflightTasks, validateIgnorePreflightErrors } from "../../tasks/preflight.js";
import { loadTarget } from "../target.js";
import { runOptions, type CommonOptions } from "../options.js";

interface PreflightOptions extends CommonOptions {
  fix?: boolean;
  ignorePreflightErrors?: string[];
}


export function register(program: Command): void {
  runOptions(
    program
      .command("preflight")
      .description("run kubeadm's preflight checks on every host (by role); --fix repairs swap, firewall ports, SELinux, modules, sysctls, hostname")
      .option("--fix", "repair what can be repaired, then check again", false)
      .option("--ignore-preflight-errors <ids>", "check IDs whose failures become warnings (comma separated, repeatable), or all", collect),
  ).action(async (o: PreflightOptions) => {
    // Bad flags are found before anything is read or any host is touched.
    const ignore = validateIgnorePreflightErrors(o.ignorePreflightErrors);
    const { cluster, source } = await loadTarget(o);
    await runPipeline({
      cluster,
      source,
      tasks: preflightTasks(),
      facts: factsTask,
      dryRun: o.dryRun ?? false,
      output: o.output,
      concurrency: o.concurrency,
      options: { fix: o.fix ?? false, ignorePreflightErrors: ignore },
      // Checks only read; take the lock only when --fix changes hosts.
      lock: o.fix === true,
    });
  });
}
