// A driver creates, starts, stops and deletes machines and says how to reach them: over SSH, or
// directly when the machine is the one kubeprov runs on (the none driver). It knows nothing about
// Kubernetes.
import type { Role } from "../spec/schema.js";

export interface MachineSpec {
  /** Node name (hostname), e.g. "demo-control-plane-1". */
  node: string;
  roles: Role[];
  cpus?: number;
  /** Bytes. */
  memory?: number;
}

export interface Machine {
  /** Node name (hostname). */
  node: string;
  /** The driver's own name for it (container name, VM name). */
  machine: string;
  /** The node's IP on the cluster network. */
  address: string;
  roles: Role[];
  state: "running" | "stopped" | "missing";
  /** How kubeprov reaches it. */
  reach: MachineReach;
}

/** Over SSH with these settings, or local: the machine kubeprov runs on (commands run directly, no SSH). */
export type MachineReach =
  | { kind: "ssh"; host: string; port: number; user: string; identityFile: string; knownHostsFile: string }
  | { kind: "local" };

/** A directory of the machine kubeprov runs on, shared into every machine (read-only by default). */
export interface SharedDirectory {
  hostPath: string;
  machinePath: string;
  readOnly: boolean;
}

export interface ClusterMachinesPlan {
  cluster: string;
  machines: MachineSpec[];
  /** Directories shared into new machines (e.g. the artifact bundle, so nothing is uploaded). Optional for drivers that cannot. */
  sharedDirectories?: SharedDirectory[];
  /** Reserve an address for a virtual IP (HA clusters). */
  reserveVirtualIP: boolean;
}

export interface ProvisionResult {
  machines: Machine[];
  /** Reserved VIP, when asked for. */
  virtualIP?: string;
  /** The cluster network's subnet (CIDR). */
  subnet: string;
  /** The machines' interface on that network, where it is not eth0 (keepalived holds the VIP there). */
  interface?: string;
  /** How the machines' init manages cgroups, for containerd and the kubelet (default cgroupfs: node containers). */
  cgroupDriver?: "systemd" | "cgroupfs";
  created: number;
  started: number;
}

export interface Driver {
  readonly name: string;
  /** Can this machine run the driver? Throws a clear error (e.g. Docker not running). */
  preflight(): Promise<void>;
  /** Converge: create missing machines, start stopped ones, keep running ones. */
  provision(plan: ClusterMachinesPlan): Promise<ProvisionResult>;
  list(cluster: string): Promise<Machine[]>;
  start(cluster: string, node?: string): Promise<void>;
  stop(cluster: string, node?: string): Promise<void>;
  /** Remove one machine and what belongs to it alone (its volumes, its known_hosts entry). */
  deleteMachine(cluster: string, node: string): Promise<void>;
  /** Remove every machine, network, volume and local file of the cluster; succeeds when nothing is left. */
  delete(cluster: string): Promise<{ removed: string[] }>;
}
