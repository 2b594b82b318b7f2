// The topology of a cluster, in one place: which host is the first control plane (where init
// runs), which control planes join it (in file order), which hosts are workers only, and where
// etcd runs: stacked on the control planes (kubeadm's default), or on hosts of their own (role
// etcd: kubeadm's "external etcd" topology) when the file has any. Every task and command asks
// these functions instead of reading roles itself. A run that joins a cluster it reaches only
// through its API (ctx.joinTo: `kubeprov join ENDPOINT` on the joining machine) has no first
// control plane among its hosts: every control plane of it joins.
import { RuntimeFailure } from "../errors.js";
import type { Host, RunContext } from "../engine/task.js";

type HostsOf = Pick<RunContext, "hosts" | "cluster" | "joinTo">;

export const isControlPlane = (h: Pick<Host, "roles">): boolean => h.roles.includes("control-plane");
/** A host of the external etcd cluster (role etcd): it runs etcd only, no kubelet, and is no Kubernetes node. */
export const isEtcdHost = (h: Pick<Host, "roles">): boolean => (h.roles as readonly string[]).includes("etcd");

/** The etcd-role hosts, in file order (empty: etcd is stacked on the control planes). */
export function externalEtcdHosts<H extends Pick<Host, "roles">>(ctx: { hosts: H[] }): H[] {
  return ctx.hosts.filter(isEtcdHost);
}

/** Whether etcd runs on hosts of its own (any host has role etcd). */
export function hasExternalEtcd(ctx: { hosts: Pick<Host, "roles">[] }): boolean {
  return ctx.hosts.some(isEtcdHost);
}

/** The same question for a cluster file (commands that have not connected to any host yet). */
export function clusterHasExternalEtcd(cluster: Pick<RunContext["cluster"], "spec">): boolean {
  return hasExternalEtcd({ hosts: cluster.spec.hosts });
}

/** Every control plane, in file order. */
export function controlPlanes(ctx: HostsOf): Host[] {
  return ctx.hosts.filter(isControlPlane);
}

/** The first control plane in file order: init runs there, the shared CAs come from there. */
export function firstControlPlane(ctx: HostsOf): Host {
  if (ctx.joinTo) throw new RuntimeFailure(`this run joins the cluster at ${ctx.joinTo.server}: its first control plane is not one of this run's hosts`);
  const h = ctx.hosts.find(isControlPlane);
  if (!h) throw new RuntimeFailure(`cluster ${ctx.cluster.metadata.name} has no host with role control-plane`);
  return h;
}

export function isFirstControlPlane(ctx: HostsOf, host: Pick<Host, "name">): boolean {
  return !ctx.joinTo && firstControlPlane(ctx).name === host.name;
}

/**
 * Every control plane's name and node address, in file order: the run's control planes, or, in a
 * run that joins through the API alone, the cluster file's (as the cluster stores it) with the
 * run's own hosts as they were found. What haproxy's backends and keepalived's peers list.
 */
export function controlPlaneAddresses(ctx: HostsOf): Array<Pick<Host, "name" | "nodeIP">> {
  if (!ctx.joinTo) return controlPlanes(ctx);
  const own = new Map(ctx.hosts.map((h) => [h.name, h]));
  return ctx.cluster.spec.hosts.filter(isControlPlane).map((h) => own.get(h.name) ?? { name: h.name, nodeIP: h.internalAddress ?? h.address });
}

/** Control planes after the first, in file order (they join one at a time); all of them when the run joins a cluster through its API. */
export function joiningControlPlanes(ctx: HostsOf): Host[] {
  return ctx.joinTo ? controlPlanes(ctx) : controlPlanes(ctx).slice(1);
}

/** Hosts that are workers and not control planes (they join by TLS bootstrap); etcd hosts are no nodes. */
export function workers(ctx: HostsOf): Host[] {
  return ctx.hosts.filter((h) => !isControlPlane(h) && !isEtcdHost(h));
}

/** The Kubernetes nodes (control planes and workers), in file order: every host but the etcd hosts. */
export function kubernetesNodes(ctx: HostsOf): Host[] {
  return ctx.hosts.filter((h) => !isEtcdHost(h));
}

/**
 * The etcd members, in file order: the etcd-role hosts when the file has any (external etcd),
 * else the control planes (stacked etcd, in the order they join).
 */
export function etcdMembers(ctx: HostsOf): Host[] {
  const external = externalEtcdHosts(ctx);
  return external.length ? external : controlPlanes(ctx);
}

/** A warning for an even number of etcd members (etcd's quorum is a majority), or undefined. */
function quorumWarning(count: number, what: string): string | undefined {
  if (count < 2 || count % 2 === 1) return undefined;
  return `${count} ${what} is even: etcd needs a majority (quorum), so ${count} members tolerate no more failures than ${count - 1}; prefer an odd number`;
}

/** A warning for an even number of control planes (stacked etcd's quorum is a majority), or undefined. */
export function controlPlaneQuorumWarning(count: number): string | undefined {
  return quorumWarning(count, "control planes");
}

/** A warning for an even number of external etcd hosts, or undefined. */
export function etcdHostQuorumWarning(count: number): string | undefined {
  return quorumWarning(count, "etcd hosts");
}

/** The quorum warning of a cluster file: about its etcd hosts with external etcd, else its control planes. */
export function clusterQuorumWarning(cluster: Pick<RunContext["cluster"], "spec">): string | undefined {
  const hosts = cluster.spec.hosts;
  if (clusterHasExternalEtcd(cluster)) return etcdHostQuorumWarning(hosts.filter(isEtcdHost).length);
  return controlPlaneQuorumWarning(hosts.filter(isControlPlane).length);
}

/** Why a stacked-etcd operation does not apply to this cluster, or undefined when etcd is stacked. */
export function externalEtcdRefusal(cluster: Pick<RunContext["cluster"], "spec">, what: string): string | undefined {
  if (!clusterHasExternalEtcd(cluster)) return undefined;
  const names = cluster.spec.hosts.filter(isEtcdHost).map((h) => h.name);
  return `${what} works on stacked etcd (etcd on the control planes); this cluster's etcd runs on its own hosts (role etcd: ${names.join(", ")}), so it is not done here`;
}
