// kubeprov delete --name NAME: every machine, volume and network of the cluster (found by the
// driver's labels, so it works when local files are gone), its local files, and its context in
// the user's kubeconfig. Deleting a cluster that is not there succeeds. A cluster of the none
// driver is this machine: it is reset first (the reset phase, as `kubeprov reset`), and its local
// files are kept when the reset fails, so that delete can run again.
import type { Command } from "commander";
import { existsSync, readFileSync } from "node:fs";
import { UsageError } from "../../errors.js";
import { getDriver } from "../../drivers/index.js";
import { resolveClusterDriver } from "../../drivers/record.js";
import { uninstallKubeconfig } from "../../drivers/localkubeconfig.js";
import { outputOption, type OutputFormat } from "../options.js";
import { clusterFiles } from "../../drivers/localfiles.js";
import { PlainReporter } from "../../output/plain.js";
import { DNS1123_LABEL } from "../../constants.js";

/** The none driver's machine is this one: Kubernetes is removed from it by the reset phase. */
async function resetThisMachine(name: string, output: OutputFormat): Promise<string[]> {
  const file = clusterFiles(name).clusterFile;
  if (!existsSync(file)) return [];
  const { parseClusterText } = await import("../../spec/load.js");
  const { resetTasks } = await import("../../tasks/reset.js");
  const { runPipeline } = await import("../../engine/pipeline.js");
  const { factsTask } = await import("../../tasks/facts.js");
  const cluster = parseClusterText(readFileSync(file, "utf8"), file);
  // JSON keeps stdout for the one result document below: the reset's events go to stderr as text.
  const reporter = output === "json" ? new PlainReporter(process.stderr) : undefined;
  try {
    await runPipeline({ cluster, source: file, tasks: resetTasks(), facts: factsTask, output, reporter });
  } finally {
    await reporter?.close();
  }
  return cluster.spec.hosts.map((h) => `Kubernetes on ${h.name} (this machine: reset)`);
}


export function register(program: Command): void {
  const cmd = program
    .command("delete")
    .description("delete a cluster made by `kubeprov up`: its machines, network, volumes, keys and local files (none driver: this machine is reset)")
    .requiredOption("--name <name>", "cluster name")
    .option("--driver <driver>", "machine driver (default: the one recorded when `up` made the cluster, else docker)");
  outputOption(cmd);
  cmd.action(async (o: { name: string; driver?: string; output: OutputFormat }) => {
    if (!DNS1123_LABEL.test(o.name)) throw new UsageError(`--name ${JSON.stringify(o.name)}: a cluster name is a DNS-1123 label`);
    const resolved = resolveClusterDriver(o.name, o.driver);
    if (resolved.name === "ssh") throw new UsageError("clusters on your own hosts are not deleted: `kubeprov reset -f FILE` removes Kubernetes from them");
    const driver = getDriver(resolved.name);
    const reset = resolved.name === "none" ? await resetThisMachine(o.name, o.output) : [];
    const { removed } = await driver.delete(o.name);
    removed.unshift(...reset);
    const kubeconfig = uninstallKubeconfig(o.name);
    if (kubeconfig) removed.push(`context ${o.name} in ${kubeconfig}`);
    if (o.output === "json") {
      process.stdout.write(JSON.stringify({ cluster: o.name, removed }) + "\n");
    } else if (removed.length === 0) {
      process.stdout.write(`cluster ${o.name}: nothing to delete\n`);
    } else {
      process.stdout.write(`cluster ${o.name} deleted:\n${removed.map((r) => `  ${r}\n`).join("")}`);
    }
  });
}
