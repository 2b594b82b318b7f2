// kubeprov reset -f FILE|--name NAME [--force] [--ignore-cluster-marker]: undo init/join on every
// host of the cluster (kubeadm reset). Idempotent: a second run reports 0 changed. A host whose
// cluster marker names another cluster is refused unless --ignore-cluster-marker says otherwise;
// --force only skips the confirmation question.
import type { Command } from "commander";
import { createInterface } from "node:readline/promises";
import { UsageError } from "../../errors.js";
import { loadTarget } from "../target.js";
import { runOptions, type CommonOptions } from "../options.js";

export function register(program: Command): void {
  runOptions(program.command("reset").description("undo init/join on the cluster's hosts: stop Kubernetes, remove its containers, files, CNI configuration and iptables chains"))
    .option("--force", "do not ask for confirmation", false)
    .option("--ignore-cluster-marker", "also reset hosts whose cluster marker (/etc/kubernetes/kubeprov-cluster) names another cluster", false)
    .action(async (o: CommonOptions & { force: boolean; ignoreClusterMarker: boolean }) => {
      const { cluster, source } = await loadTarget(o);
      const names = cluster.spec.hosts.map((h) => h.name).join(", ");
      if (!o.force && !o.dryRun) {
        if (!process.stdin.isTTY) throw new UsageError(`reset removes Kubernetes from ${names}: pass --force to confirm`);
        const rl = createInterface({ input: process.stdin, output: process.stderr });
        const answer = await rl.question(`reset removes Kubernetes (etcd data included) from ${names}. Continue? [y/N] `);
        rl.close();
        if (!/^y(es)?$/i.test(answer.trim())) throw new UsageError("reset cancelled");
      }
      const { resetTasks, IGNORE_CLUSTER_MARKER_OPTION } = await import("../../tasks/reset.js");
      const { runPipeline } = await import("../../engine/pipeline.js");
      const { factsTask } = await import("../../tasks/facts.js");
      await runPipeline({
        cluster,
        source,
        tasks: resetTasks(),
        facts: factsTask,
        dryRun: o.dryRun,
        output: o.output,
        concurrency: o.concurrency,
        options: { [IGNORE_CLUSTER_MARKER_OPTION]: o.ignoreClusterMarker },
      });
    });
}
