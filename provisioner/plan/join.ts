// The plan of `kubeprov join`: every host but the first control plane joins the cluster init made:
// other control planes (stacked etcd, one at a time) and workers (TLS bootstrap), as the cluster
// plan (plan/cluster.ts) declares them.
import type { Task } from "../engine/task.js";
import { clusterTasks } from "./cluster.js";

export function joinTasks(): Task[] {
  return clusterTasks("join");
}
