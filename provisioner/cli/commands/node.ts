// kubeprov node list --name NAME [-o json]: the cluster's machines, as the driver that made the
// cluster sees them (docker: containers found by label; virtualbox: VMs found by group), or the
// hosts of its cluster file when the driver finds none.
import type { Command } from "commander";
import { existsSync } from "node:fs";
import { UsageError } from "../../errors.js";
import { nodeOrder } from "../../drivers/docker/driver.js";
import { clusterFiles } from "../../drivers/localfiles.js";
import { parseClusterText } from "../../spec/load.js";
import { readFileSync } from "node:fs";
import { outputOption, parsePositiveInt, type OutputFormat } from "../options.js";
import { clusterDriver, resolveClusterDriver } from "../../drivers/record.js";
import { DEFAULT_DRAIN_TIMEOUT_S } from "../../lifecycle/remove-node.js";
import { removeDriverNode } from "../../lifecycle/driver-nodes.js";
import { DEFAULT_KUBERNETES_VERSION, DNS1123_LABEL } from "../../constants.js";

export interface NodeRow {
  name: string;
  address: string;
  roles: string[];
  machine: string;
}


/** The nodes of cluster NAME: its driver's machines, else the hosts of clusterDir(NAME)/cluster.yaml. */
export async function listNodes(name: string, driver?: string): Promise<Array<NodeRow & { state: string }>> {
  const machines = await clusterDriver(name, driver).list(name);
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
  node
    .command("delete")
    .description("take a node out of the cluster (drain, Node object, etcd member; refused if etcd would lose its quorum) and delete its machine")
    .argument("<node>", "the node to remove")
    .requiredOption("--name <name>", "cluster name")
    .option("--force", "go on when draining times out, the node is unreachable or etcd would lose its quorum", false)
    .option("--drain-timeout <seconds>", "how long draining may take", parsePositiveInt, DEFAULT_DRAIN_TIMEOUT_S)
    .option("--driver <driver>", "machine driver (default: the one recorded when `up` made the cluster)")
    .action(async (target: string, o: { name: string; force: boolean; drainTimeout: number; driver?: string }) => {
      if (!DNS1123_LABEL.test(o.name)) throw new UsageError(`--name ${JSON.stringify(o.name)}: a cluster name is a DNS-1123 label`);
      const rows = await listNodes(o.name, o.driver);
      if (!rows.some((r) => r.name === target)) throw new UsageError(`${target} is not a node of ${o.name} (${rows.map((r) => r.name).join(", ") || "no nodes"})`);
      const t0 = Date.now();
      await removeDriverNode(o.name, target, clusterDriver(o.name, o.driver), {
        force: o.force,
        drainTimeoutS: o.drainTimeout,
        kubernetes: true,
        log: (m) => process.stderr.write(`${m}\n`),
      });
      process.stderr.write(`${target} removed from ${o.name} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    });
  node
    .command("add")
    .description("add a worker (or, with --control-plane, a control plane) to a cluster made by `kubeprov up`")
    .requiredOption("--name <name>", "cluster name")
    .option("--control-plane", "the new node is a control plane (a stacked etcd member, unless the cluster has etcd hosts)", false)
    .action(async (o: { name: string; controlPlane: boolean }) => {
      if (!DNS1123_LABEL.test(o.name)) throw new UsageError(`--name ${JSON.stringify(o.name)}: a cluster name is a DNS-1123 label`);
      if (resolveClusterDriver(o.name).name === "none")
        throw new UsageError(`cluster ${o.name} runs on the none driver: its one node is this machine, and a second machine cannot be added (use the docker or virtualbox driver for more nodes)`);
      const rows = await listNodes(o.name);
      if (!rows.length) throw new UsageError(`no cluster named ${o.name}`);
      const cps = rows.filter((r) => r.roles.includes("control-plane")).length;
      const file = clusterFiles(o.name).clusterFile;
      const current = existsSync(file) ? parseClusterText(readFileSync(file, "utf8"), file) : undefined;
      const cni = current?.spec.networking.cni ?? "flannel";
      // `up` writes the cluster file anew from its flags, which cannot carry a manifest's path.
      if (cni === "manifest") throw new UsageError(`${o.name} uses networking.cni "manifest": add the node to its cluster file and run \`kubeprov apply -f FILE\``);
      const { up } = await import("./up.js");
      const recorded = resolveClusterDriver(o.name);
      await up({
        name: o.name,
        // External etcd hosts (role etcd) are kept as they are and are not counted as nodes.
        nodes: rows.filter((r) => !r.roles.includes("etcd")).length + 1,
        controlPlanes: cps + (o.controlPlane ? 1 : 0),
        etcdNodes: rows.filter((r) => r.roles.includes("etcd")).length,
        kubernetesVersion: current?.spec.kubernetesVersion ?? DEFAULT_KUBERNETES_VERSION,
        kubernetes: true,
        driver: recorded.name,
        vboxImage: recorded.record?.vboxImage,
        kubeconfig: false,
        output: "text",
        cni,
      });
    });
  const list = node
    .command("list")
    .description("list the nodes: name, address, roles, machine")
    .requiredOption("--name <name>", "cluster name")
    .option("--driver <driver>", "machine driver (default: the one recorded when `up` made the cluster)");
  outputOption(list);
  list.action(async (o: { name: string; driver?: string; output: OutputFormat }) => {
    if (!DNS1123_LABEL.test(o.name)) throw new UsageError(`--name ${JSON.stringify(o.name)}: a cluster name is a DNS-1123 label`);
    const rows = await listNodes(o.name, o.driver);
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
