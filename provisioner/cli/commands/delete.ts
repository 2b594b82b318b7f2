// kubeprov delete --name NAME: every machine, volume and network of the cluster (found by the
// driver's labels, so it works when local files are gone), its local files, and its context in
// the user's kubeconfig. Deleting a cluster that is not there succeeds.
import type { Command } from "commander";
import { UsageError } from "../../errors.js";
import { getDriver } from "../../drivers/index.js";
import { resolveClusterDriver } from "../../drivers/record.js";
import { uninstallKubeconfig } from "../../drivers/localkubeconfig.js";
import { outputOption, type OutputFormat } from "../options.js";

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

export function register(program: Command): void {
  const cmd = program
    .command("delete")
    .description("delete a cluster made by `kubeprov up`: its machines, network, volumes, keys and local files")
    .requiredOption("--name <name>", "cluster name")
    .option("--driver <driver>", "machine driver (default: the one recorded when `up` made the cluster, else docker)");
  outputOption(cmd);
  cmd.action(async (o: { name: string; driver?: string; output: OutputFormat }) => {
    if (!DNS1123_LABEL.test(o.name)) throw new UsageError(`--name ${JSON.stringify(o.name)}: a cluster name is a DNS-1123 label`);
    const resolved = resolveClusterDriver(o.name, o.driver);
    if (resolved.name === "ssh") throw new UsageError("clusters on your own hosts are not deleted: `kubeprov reset -f FILE` removes Kubernetes from them");
    const driver = getDriver(resolved.name);
    const { removed } = await driver.delete(o.name);
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
