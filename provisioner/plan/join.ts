// The plan of `kubeprov join`: every host but the first control plane joins the cluster init made:
// other control planes (stacked etcd, one at a time) and workers (TLS bootstrap), as the cluster
// plan (plan/cluster.ts) declares them.
import type { Host, RunContext, Task } from "../engine/task.js";
import { clusterTasks } from "./cluster.js";
import { firstControlPlane } from "./topology.js";

/** Joining more control planes is implemented (kept for callers that ask). */
export const CONTROL_PLANE_JOIN = true;

/** Every host but the first control plane. */
export function joiningHosts(ctx: RunContext): Host[] {
  const first = firstControlPlane(ctx);
  return ctx.hosts.filter((h) => h.name !== first.name);
}

export function joinTasks(): Task[] {
  return clusterTasks("join");
}
