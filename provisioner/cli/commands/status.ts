// kubeprov status -f FILE|--name NAME [-o json]: connects to every host in parallel and reports,
// per host, reachability, OS, kernel, CPUs, memory, what kubeprov finds installed, the health of
// each Kubernetes component, and one state per node and for the cluster (Running, Degraded,
// Stopped, ...; status/state.ts). For a cluster a driver made, the driver says which machines are
// stopped (those are not connected to). Read-only.
// Exit 0 when the cluster is Running (or nothing is installed yet), 1 otherwise (every host is
// still reported).
import type { Command } from "commander";
import { RuntimeFailure } from "../../errors.js";
import { collectStatus, DEFAULT_PROBES, renderStatusText, type HostStatus } from "../../status/probes.js";
import { kubernetesProbeFor, renderKubernetesText } from "../../status/kubernetes.js";
import { clusterState, nodeState, stateIsFailure } from "../../status/state.js";
import { getDriver } from "../../drivers/index.js";
import type { Cluster } from "../../spec/schema.js";
import { loadTarget } from "../target.js";
import { resolveClusterDriver } from "../../drivers/record.js";
import { concurrencyOption, outputOption, targetOptions, type CommonOptions } from "../options.js";

interface StatusOptions extends CommonOptions {
  acceptNewHostKeys?: boolean;
}

/** The driver's state of each machine of a driver-made cluster (undefined for a cluster file of existing hosts). */
async function machineStates(cluster: Cluster, named: boolean): Promise<Map<string, "running" | "stopped" | "missing"> | undefined> {
  if (!named) return undefined;
  const resolved = resolveClusterDriver(cluster.metadata.name);
  if (resolved.from !== "recorded" || resolved.name === "ssh") return undefined;
  const driver = getDriver(resolved.name);
  await driver.preflight();
  const machines = new Map((await driver.list(cluster.metadata.name)).map((m) => [m.node, m.state] as const));
  return new Map(cluster.spec.hosts.map((h) => [h.name, machines.get(h.name) ?? "missing"] as const));
}

export function register(program: Command): void {
  const cmd = program
    .command("status")
    .description("report every host (reachable, OS, installed, component health) and a state per node and for the cluster: Running, Degraded, Stopped (exit 1 unless Running)")
    .option("--accept-new-host-keys", "record the host keys of hosts not yet in known_hosts (a changed key is always refused)", false);
  targetOptions(cmd);
  outputOption(cmd);
  concurrencyOption(cmd);
  cmd.action(async (o: StatusOptions) => {
    const { cluster } = await loadTarget(o);
    const machines = await machineStates(cluster, Boolean(o.name));
    const hosts = await collectStatus(cluster, { acceptNewHostKeys: o.acceptNewHostKeys, concurrency: o.concurrency, probes: [...DEFAULT_PROBES, kubernetesProbeFor(cluster)], machines });
    const states = hosts.map((h): HostStatus => {
      const s = nodeState(h, machines?.get(h.name));
      return Object.assign(h, { state: s.state, stateReasons: s.reasons });
    });
    const state = clusterState(states.map((h) => h.state as ReturnType<typeof nodeState>["state"]));
    if (o.output === "json") process.stdout.write(`${JSON.stringify({ cluster: { name: cluster.metadata.name, state }, hosts })}\n`);
    else process.stdout.write(`${renderStatusText(hosts)}${renderKubernetesText(hosts).map((l) => `${l}\n`).join("")}\ncluster ${cluster.metadata.name}: ${state}\n`);
    if (stateIsFailure(state)) {
      const bad = states.filter((h) => h.state !== "Running" && h.state !== "NotInstalled");
      const down = hosts.filter((h) => !h.reachable && h.state === "Unreachable");
      const unreachable = down.length ? `${down.length} of ${hosts.length} host${hosts.length === 1 ? "" : "s"} unreachable: ${down.map((h) => h.name).join(", ")}; ` : "";
      throw new RuntimeFailure(`${unreachable}cluster ${cluster.metadata.name} is ${state}: ${bad.map((h) => `${h.name} ${h.state}`).join(", ")}`);
    }
  });
}
