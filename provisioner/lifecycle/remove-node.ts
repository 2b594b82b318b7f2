// Taking a node out of a running cluster, in the order that keeps the cluster healthy: refuse what
// would break etcd's quorum (unless forced), cordon and drain it (PodDisruptionBudgets respected,
// bounded by a timeout), remove its etcd member when it is a control plane, delete its Node object.
// The caller then deletes or resets the machine and converges the rest (haproxy backends and
// keepalived peers follow the cluster file). Everything goes through a control plane that stays.
import { RuntimeFailure, UsageError } from "../errors.js";
import { createRunContext } from "../engine/context.js";
import { MemoryReporter } from "../events.js";
import type { Host } from "../engine/task.js";
import type { Cluster } from "../spec/schema.js";
import { closeHosts, connectHostsSettled } from "../engine/hosts.js";
import { etcdctlCommand, listMembers, memberOf, reconfigure } from "../tasks/etcdmember.js";
import { BIN_DIR, KUBERNETES_DIR, PORT_APISERVER } from "../constants.js";
import { shq } from "../transport/transport.js";
import { isMap, isSeq, parseDocument, type YAMLSeq } from "yaml";
import { clusterHasExternalEtcd, isEtcdHost } from "../plan/topology.js";

export interface RemoveNodeOptions {
  /** Go on when draining times out, the node is unreachable, or etcd would lose its quorum. */
  force: boolean;
  drainTimeoutS: number;
  log: (message: string) => void;
}

export const DEFAULT_DRAIN_TIMEOUT_S = 120;

/** The cluster file without `node`. Pure. */
export function withoutHost(cluster: Cluster, node: string): Cluster {
  return { ...cluster, spec: { ...cluster.spec, hosts: cluster.spec.hosts.filter((h) => h.name !== node) } };
}

/** Whether etcd keeps a quorum without `leaving`: the healthy voting members left are a majority of those left. Pure. */
export function quorumAfterRemoval(votingMembers: number, healthyOthers: number): { ok: boolean; need: number } {
  const left = votingMembers - 1;
  const need = Math.floor(left / 2) + 1;
  return { ok: left >= 1 && healthyOthers >= need, need };
}

/** Removes `node` from the cluster's control (Kubernetes and etcd); the machine itself is the caller's. */
export async function removeNodeFromCluster(cluster: Cluster, source: string, node: string, opts: RemoveNodeOptions): Promise<void> {
  const spec = cluster.spec.hosts.find((h) => h.name === node);
  if (!spec) throw new UsageError(`${node} is not a node of ${cluster.metadata.name} (${cluster.spec.hosts.map((h) => h.name).join(", ")})`);
  const isCp = spec.roles.includes("control-plane");
  if (isEtcdHost(spec))
    throw new UsageError(`${node} is an external etcd host (role etcd), not a Kubernetes node: removing a member of the external etcd is not built (etcdctl member remove on an etcd host does it by hand)`);
  // With external etcd a control plane has no etcd member to remove.
  const hasMember = isCp && !clusterHasExternalEtcd(cluster);
  const rest = withoutHost(cluster, node);
  if (isCp && !rest.spec.hosts.some((h) => h.roles.includes("control-plane")))
    throw new UsageError(`${node} is the last control plane of ${cluster.metadata.name}: delete the cluster instead`);

  const conns = await connectHostsSettled(cluster, { acceptNewHostKeys: false });
  const hosts = conns.flatMap((c) => (c.host ? [c.host] : []));
  try {
    const target = hosts.find((h) => h.name === node);
    if (!target && !opts.force) throw new RuntimeFailure(`${node} is unreachable (${conns.find((c) => c.spec.name === node)?.error ?? "no connection"}); --force removes it anyway`);
    // A control plane that stays does the work (the first one of those in file order).
    const staying = hosts.filter((h) => h.name !== node);
    const ctx = createRunContext({ cluster: rest, source, hosts: staying, reporter: new MemoryReporter() });
    const via = staying.find((h) => h.roles.includes("control-plane"));
    if (!via) throw new RuntimeFailure(`no control plane of ${cluster.metadata.name} other than ${node} is reachable`);

    let memberId: string | undefined;
    if (hasMember) {
      const members = await listMembers(ctx);
      const me = target ? memberOf(members, target) : members.find((m) => m.name === node);
      memberId = me?.id;
      if (me && !me.learner) {
        const voting = members.filter((m) => !m.learner).length;
        const healthy = await healthyMembers(staying.filter((h) => h.roles.includes("control-plane")));
        const q = quorumAfterRemoval(voting, healthy);
        if (!q.ok) {
          const why = `removing ${node} leaves etcd ${voting - 1} voting member(s) of which ${healthy} are healthy; a quorum needs ${q.need}`;
          if (!opts.force) throw new RuntimeFailure(`${why}: refused (--force removes it anyway)`);
          opts.log(`warning: ${why}; going on (--force)`);
        }
      }
    }

    // The staying control plane's own API server, not the endpoint: behind the endpoint haproxy may
    // still pick the leaving node's API server, which fails once its etcd member is gone.
    const server = `https://${via.nodeIP.includes(":") ? `[${via.nodeIP}]` : via.nodeIP}:${PORT_APISERVER}`;
    const kubectl = (args: string) => `${BIN_DIR}/kubectl --kubeconfig=${KUBERNETES_DIR}/admin.conf --server=${server} ${args}`;
    opts.log(`${node}: cordon and drain (PodDisruptionBudgets respected, at most ${opts.drainTimeoutS} s)`);
    const drain = await via.transport.exec(
      // --force (kubectl's) also deletes pods no controller would recreate; without it they stop the drain.
      kubectl(`drain ${shq(node)} --ignore-daemonsets --delete-emptydir-data${opts.force ? " --force" : ""} --timeout=${opts.drainTimeoutS}s`),
      { sudo: true, check: false, timeoutMs: (opts.drainTimeoutS + 30) * 1000 },
    );
    if (drain.code !== 0 && !/not found/i.test(drain.stderr)) {
      const why = (drain.stderr || drain.stdout).trim().split("\n").slice(-3).join("\n");
      if (!opts.force) throw new RuntimeFailure(`draining ${node} did not finish: it is cordoned, nothing else was changed (--force goes on)`, why);
      opts.log(`warning: draining ${node} did not finish; going on (--force): ${why}`);
    }
    // The etcd member first: if etcd refuses, the node is only cordoned and drained, and a re-run
    // (or uncordon) picks up from there.
    if (memberId) {
      await reconfigure(ctx, `member remove ${memberId}`, undefined);
      opts.log(`${node}: etcd member ${memberId} removed`);
    }
    await via.transport.exec(kubectl(`delete node ${shq(node)} --ignore-not-found --wait=false`), { sudo: true, timeoutMs: 60_000 });
    opts.log(`${node}: Node object deleted`);
  } finally {
    await closeHosts(hosts);
  }
}

/** How many of these control planes' local etcd answer as healthy. */
async function healthyMembers(cps: Host[]): Promise<number> {
  const ok = await Promise.all(cps.map(async (h) => (await h.transport.exec(etcdctlCommand("endpoint health"), { sudo: true, check: false, timeoutMs: 20_000 })).code === 0));
  return ok.filter(Boolean).length;
}

/** Removes `node` from the cluster file's text, keeping everything else (comments included). */
export function clusterTextWithoutHost(text: string, node: string): string {
  const doc = parseDocument(text);
  const hosts = doc.getIn(["spec", "hosts"]) as YAMLSeq | undefined;
  if (!hosts || !isSeq(hosts)) return text;
  const index = hosts.items.findIndex((item) => isMap(item) && item.get("name") === node);
  if (index < 0) return text;
  hosts.items.splice(index, 1);
  return doc.toString({ lineWidth: 0 });
}
