// `apply --prune`: nodes of the running cluster that its file no longer lists leave the cluster.
// The cluster is the source of truth for what is there: its Node objects (read with kubectl on a
// control plane of the file). A leaver is reached over SSH at its Node's InternalIP with the file's
// SSH settings (it is no longer in the file, so nothing more specific is known), taken out of the
// cluster the way `node delete` does (drain, etcd member, Node object; refused when etcd would lose
// its quorum, unless forced), then reset (kubeadm reset: kubeprov's files, containers, chains).
import { BIN_DIR, KUBERNETES_DIR } from "../constants.js";
import { RuntimeFailure } from "../errors.js";
import type { Cluster, HostSpec } from "../spec/schema.js";
import { closeHosts, connectHostsSettled } from "../engine/hosts.js";
import { removeNodeFromCluster, type RemoveNodeOptions } from "./remove-node.js";
import { runPipeline } from "../engine/pipeline.js";
import { factsTask } from "../tasks/facts.js";
import { resetTasks } from "../tasks/reset.js";
import type { Reporter } from "../events.js";
import type { RunSummary } from "../engine/runner.js";

export interface Leaver {
  name: string;
  /** The Node's InternalIP: where kubeprov reaches it. */
  address: string;
  roles: HostSpec["roles"];
}

interface NodeList {
  items: Array<{
    metadata: { name: string; labels?: Record<string, string> };
    status?: { addresses?: Array<{ type: string; address: string }> };
  }>;
}

/** The Nodes whose names the file does not list, with the address and roles the cluster knows them by. Pure. */
export function leaversOf(cluster: Cluster, nodes: NodeList): Leaver[] {
  const listed = new Set(cluster.spec.hosts.map((h) => h.name));
  return nodes.items
    .filter((n) => !listed.has(n.metadata.name))
    .map((n) => ({
      name: n.metadata.name,
      address: n.status?.addresses?.find((a) => a.type === "InternalIP")?.address ?? "",
      roles: n.metadata.labels?.["node-role.kubernetes.io/control-plane"] !== undefined ? ["control-plane"] : ["worker"],
    }));
}

/** The cluster's Node objects, read on the first reachable control plane of the file. */
export async function nodesNotInFile(cluster: Cluster): Promise<Leaver[]> {
  const conns = await connectHostsSettled({ ...cluster, spec: { ...cluster.spec, hosts: cluster.spec.hosts.filter((h) => h.roles.includes("control-plane")) } }, { acceptNewHostKeys: false });
  const hosts = conns.flatMap((c) => (c.host ? [c.host] : []));
  try {
    let last = "no control plane of the file is reachable";
    for (const via of hosts) {
      const r = await via.transport.exec(`${BIN_DIR}/kubectl --kubeconfig=${KUBERNETES_DIR}/admin.conf get nodes -o json --request-timeout=20s`, { sudo: true, check: false, timeoutMs: 30_000 });
      if (r.code === 0) return leaversOf(cluster, JSON.parse(r.stdout) as NodeList);
      last = `${via.name}: kubectl get nodes: ${r.stderr.trim().split("\n").pop()}`;
    }
    throw new RuntimeFailure(`--prune needs the cluster's Node list: ${last}`);
  } finally {
    await closeHosts(hosts);
  }
}

/** The file's cluster with the leaver added back as a host, so the removal and the reset can reach it. */
export function withLeaver(cluster: Cluster, l: Leaver): Cluster {
  const host: HostSpec = { name: l.name, address: l.address, roles: [...l.roles], connection: "ssh" };
  return { ...cluster, spec: { ...cluster.spec, hosts: [...cluster.spec.hosts, host] } };
}

export interface PruneOptions extends RemoveNodeOptions {
  source: string;
  /** Where the resets' task events go (one stream with the apply that came before). */
  reporter: Reporter;
  concurrency?: number;
  /** Each reset's summary, for the caller's one summary. */
  onSummary: (summary: RunSummary) => void;
}

export const PRUNE_TASK = "prune/leave-cluster";

/**
 * Takes each leaver out of the cluster and resets it, workers first, then control planes one at a
 * time (each removal re-checks etcd's quorum). A leaver without an address cannot be reached:
 * refused unless forced (then only its Node object and etcd member go).
 */
export async function pruneNodes(cluster: Cluster, leavers: Leaver[], opts: PruneOptions): Promise<void> {
  const ordered = [...leavers].sort((a, b) => Number(a.roles.includes("control-plane")) - Number(b.roles.includes("control-plane")));
  for (const l of ordered) {
    const whole = withLeaver(cluster, l);
    opts.log(`${l.name}: not in ${opts.source}; taking it out of the cluster (--prune)`);
    const t0 = Date.now();
    await removeNodeFromCluster(whole, opts.source, l.name, opts);
    // The removal is not a task of the plan (the host is not in the file), but it is a change the
    // run made: one task event for it, counted in the summary.
    opts.reporter.emit({ type: "task", host: l.name, task: PRUNE_TASK, phase: "prune", status: "changed", reason: "drained, etcd member and Node object removed", durationMs: Date.now() - t0 });
    opts.onSummary({ changed: 1, unchanged: 0, failed: 0, skipped: 0, durationMs: Date.now() - t0, dryRun: false, results: [] });
    const alone: Cluster = { ...whole, spec: { ...whole.spec, hosts: whole.spec.hosts.filter((h) => h.name === l.name) } };
    try {
      await runPipeline({ cluster: alone, source: opts.source, tasks: resetTasks(), facts: factsTask, reporter: opts.reporter, emitSummary: false, onSummary: opts.onSummary, concurrency: opts.concurrency, acceptNewHostKeys: false });
    } catch (e) {
      if (!opts.force) throw e;
      opts.log(`warning: ${l.name} left the cluster but was not reset (${(e as Error).message.split("\n")[0]}); going on (--force)`);
    }
  }
}
