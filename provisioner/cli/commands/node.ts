// kubeprov node list --name NAME [-o json]: the cluster's machines, as the driver sees them
// (docker: containers found by label), or the hosts of its cluster file for other drivers.
import type { Command } from "commander";
import { existsSync } from "node:fs";
import { UsageError } from "../../errors.js";
import { DockerDriver, nodeOrder } from "../../drivers/docker/driver.js";
import { clusterFiles } from "../../drivers/localfiles.js";
import { parseClusterText } from "../../spec/load.js";
import { readFileSync } from "node:fs";
import { outputOption, type OutputFormat } from "../options.js";

export interface NodeRow {
  name: string;
  address: string;
  roles: string[];
  machine: string;
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** The nodes of cluster NAME: docker containers by label, else the hosts of clusterDir(NAME)/cluster.yaml. */
export async function listNodes(name: string): Promise<Array<NodeRow & { state: string }>> {
  const machines = await new DockerDriver().list(name);
  if (machines.length > 0) return machines.map((m) => ({ name: m.node, address: m.address, roles: [...m.roles], machine: m.machine, state: m.state }));
  const file = clusterFiles(name).clusterFile;
  if (!existsSync(file)) return [];
  const cluster = parseClusterText(readFileSync(file, "utf8"), file);
  return cluster.spec.hosts
    .map((h) => ({ name: h.name, node: h.name, address: h.address, roles: [...h.roles], machine: "", state: "unknown" }))
    .sort(nodeOrder)
    .map(({ node: _n, ...rest }) => rest);
}

export function register(program: Command): void {
  const node = program.command("node").description("the machines of a cluster made by `kubeprov up`");
  const list = node
    .command("list")
    .description("list the nodes: name, address, roles, machine")
    .requiredOption("--name <name>", "cluster name");
  outputOption(list);
  list.action(async (o: { name: string; output: OutputFormat }) => {
    if (!DNS1123_LABEL.test(o.name)) throw new UsageError(`--name ${JSON.stringify(o.name)}: a cluster name is a DNS-1123 label`);
    const rows = await listNodes(o.name);
    if (o.output === "json") {
      process.stdout.write(JSON.stringify(rows.map(({ name, address, roles, machine }) => ({ name, address, roles, machine })), null, 2) + "\n");
      return;
    }
    if (rows.length === 0) {
      process.stderr.write(`no nodes in cluster ${o.name}\n`);
      return;
    }
    const table = [["NAME", "ADDRESS", "ROLES", "MACHINE", "STATE"], ...rows.map((r) => [r.name, r.address, r.roles.join(","), r.machine, r.state])];
    const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
    for (const row of table) process.stdout.write(row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i] + 2))).join("") + "\n");
  });
}
