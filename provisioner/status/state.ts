// The one-word state of each node and of the cluster, as `minikube status` gives it, derived from
// what the probes found (pure). A node is:
//   Running       reachable, and every component its roles run answers healthy on its own endpoint
//                 (kubelet; on a control plane etcd, kube-apiserver, controller-manager, scheduler,
//                 and haproxy answering when the cluster is HA);
//   Degraded      reachable, Kubernetes installed, but some of those components are not healthy;
//   Stopped       its machine is stopped (driver clusters: the driver says so; no connection tried);
//   Missing       the cluster file names it but the driver has no such machine;
//   Unreachable   no SSH connection (a host kubeprov does not create, or a machine that is up but
//                 does not answer);
//   NotInstalled  reachable, but no Kubernetes on it yet (before init/join, after reset).
// The cluster is Running when every node is, Stopped when every node is, NotInstalled when no node
// has Kubernetes, and Degraded otherwise.
import type { ComponentHealth, HaStatus } from "./kubernetes.js";
import type { HostStatus } from "./probes.js";

export type NodeState = "Running" | "Degraded" | "Stopped" | "Missing" | "Unreachable" | "NotInstalled";
export type ClusterState = "Running" | "Degraded" | "Stopped" | "NotInstalled";

export interface StateReport {
  state: NodeState;
  /** Why the node is not Running (empty when it is). */
  reasons: string[];
}

/** A node's state from its probed status; `machine` is the driver's word for it, when a driver made it. */
export function nodeState(s: HostStatus, machine?: "running" | "stopped" | "missing"): StateReport {
  if (machine === "stopped") return { state: "Stopped", reasons: ["machine stopped"] };
  if (machine === "missing") return { state: "Missing", reasons: ["no such machine"] };
  if (!s.reachable) return { state: "Unreachable", reasons: [s.error ?? "no connection"] };
  const comps = s.components as Record<string, ComponentHealth> | { error: string } | undefined;
  if (!comps) return { state: "NotInstalled", reasons: ["no Kubernetes on this host"] };
  if (typeof (comps as { error?: unknown }).error === "string") return { state: "Degraded", reasons: [(comps as { error: string }).error] };
  const reasons = Object.entries(comps as Record<string, ComponentHealth>)
    .filter(([, h]) => h.health !== "ok")
    .map(([c, h]) => `${c}: ${h.health}`);
  const ha = s.ha as HaStatus | undefined;
  if (ha && ha.backends.length === 0) reasons.push("haproxy: not answering");
  return reasons.length ? { state: "Degraded", reasons } : { state: "Running", reasons: [] };
}

export function clusterState(nodes: NodeState[]): ClusterState {
  if (nodes.length && nodes.every((n) => n === "Running")) return "Running";
  if (nodes.length && nodes.every((n) => n === "Stopped")) return "Stopped";
  if (nodes.every((n) => n === "NotInstalled")) return "NotInstalled";
  return "Degraded";
}

/** The exit status a state asks for: only a cluster that is Running (or has nothing installed yet) is a success. */
export function stateIsFailure(state: ClusterState): boolean {
  return state === "Degraded" || state === "Stopped";
}
