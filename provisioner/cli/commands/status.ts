// kubeprov status -f FILE|--name NAME [-o json]: connects to every host in parallel and reports,
// per host, reachability, OS, kernel, CPUs, memory and what kubeprov finds installed. Read-only.
// Exit 0 when every host answered, 1 when any host is unreachable (the others are still reported).
import type { Command } from "commander";
import { RuntimeFailure } from "../../errors.js";
import { collectStatus, DEFAULT_PROBES, renderStatusText } from "../../status/probes.js";
import { kubernetesProbe, renderKubernetesText } from "../../status/kubernetes.js";
import { loadTarget } from "../target.js";
import { concurrencyOption, outputOption, targetOptions, type CommonOptions } from "../options.js";

interface StatusOptions extends CommonOptions {
  acceptNewHostKeys?: boolean;
}

export function register(program: Command): void {
  const cmd = program
    .command("status")
    .description("report every host: reachable, OS, kernel, CPUs, memory, what is installed (exit 1 if a host is unreachable)")
    .option("--accept-new-host-keys", "record the host keys of hosts not yet in known_hosts (a changed key is always refused)", false);
  targetOptions(cmd);
  outputOption(cmd);
  concurrencyOption(cmd);
  cmd.action(async (o: StatusOptions) => {
    const { cluster } = await loadTarget(o);
    const hosts = await collectStatus(cluster, { acceptNewHostKeys: o.acceptNewHostKeys, concurrency: o.concurrency, probes: [...DEFAULT_PROBES, kubernetesProbe] });
    if (o.output === "json") process.stdout.write(`${JSON.stringify({ hosts })}\n`);
    else process.stdout.write(renderStatusText(hosts) + renderKubernetesText(hosts).map((l) => `${l}\n`).join(""));
    const down = hosts.filter((h) => !h.reachable);
    if (down.length) {
      throw new RuntimeFailure(`${down.length} of ${hosts.length} host${hosts.length === 1 ? "" : "s"} unreachable: ${down.map((h) => h.name).join(", ")}`);
    }
  });
}
