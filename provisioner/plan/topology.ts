// The topology of a cluster, in one place: which host is the first control plane (where init
// runs), which control planes join it (stacked etcd members, in file order), which hosts are
// workers only. Every task and command asks these functions instead of reading roles itself.
import { RuntimeFailure } from "../errors.js";
import type { Host, RunContext } from "../engine/task.js";

type HostsOf = Pick<RunContext, "hosts" | "cluster">;

export const isControlPlane = (h: Pick<Host, "roles">): boolean => h.roles.includes("control-plane");

/** Every control plane, in file order. */
export function controlPlanes(ctx: HostsOf): Host[] {
  return ctx.hosts.filter(isControlPlane);
}

/** The first control plane in file order: init runs there, the shared CAs come from there. */
export function firstControlPlane(ctx: HostsOf): Host {
  const h = ctx.hosts.find(isControlPlane);
  if (!h) throw new RuntimeFailure(`cluster ${ctx.cluster.metadata.name} has no host with role control-plane`);
  return h;
}

export function isFirstControlPlane(ctx: HostsOf, host: Pick<Host, "name">): boolean {
  return firstControlPlane(ctx).name === host.name;
}

/** Control planes after the first, in file order (they join one at a time). */
export function joiningControlPlanes(ctx: HostsOf): Host[] {
  return controlPlanes(ctx).slice(1);
}

/** Hosts that are workers and not control planes (they join by TLS bootstrap). */
export function workers(ctx: HostsOf): Host[] {
  return ctx.hosts.filter((h) => !isControlPlane(h));
}

/** The etcd members, in the order they join: the control planes (stacked etcd). */
export function etcdMembers(ctx: HostsOf): Host[] {
  return controlPlanes(ctx);
}

/** A warning for an even number of control planes (etcd's quorum is a majority), or undefined. */
export function controlPlaneQuorumWarning(count: number): string | undefined {
  if (count < 2 || count % 2 === 1) return undefined;
  return `${count} control planes is even: etcd needs a majority (quorum), so ${count} members tolerate no more failures than ${count - 1}; prefer an odd number`;
}
