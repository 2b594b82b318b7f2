// Pure planning for the docker driver: node names, the cluster subnet, node addresses and the
// exact `docker run` arguments. No I/O here; provision.ts acts on what these functions return.
import type { SharedDirectory } from "../driver.js";
import { DOCKER_LABEL_CLUSTER, DOCKER_LABEL_NODE, DOCKER_LABEL_ROLE, DOCKER_NETWORK_POOL } from "../../constants.js";
import type { MachineSpec } from "../driver.js";
import type { Role } from "../../spec/schema.js";

/** Docker network of a cluster. */
export function networkName(cluster: string): string {
  return `kubeprov-${cluster}`;
}

/** Named volume holding a node's /var/lib/containerd (overlay on overlay fails; DESIGN fix 3). */
export function containerdVolumeName(node: string): string {
  return `${node}-containerd`;
}

/** First host number of node addresses in the /24 (.10, .11, ...). */
export const FIRST_NODE_HOST = 10;
/** The VIP of an HA cluster (never given to a container). */
export const VIP_HOST = 100;
/** Node addresses stop before the VIP. */
export const LAST_NODE_HOST = VIP_HOST - 1;

/**
 * Node names like kind's: <cluster>-control-plane, <cluster>-control-plane2, ...,
 * <cluster>-worker, <cluster>-worker2, .... The first `controlPlanes` nodes are control planes;
 * a single-node cluster's one node is both control plane and worker. `etcdNodes` more machines
 * (<cluster>-etcd, <cluster>-etcd2, ...) have role etcd: the external etcd cluster.
 */
export function planNodes(cluster: string, nodes: number, controlPlanes: number, etcdNodes = 0): MachineSpec[] {
  const out: MachineSpec[] = [];
  for (let i = 0; i < controlPlanes; i++) {
    const roles: Role[] = nodes === controlPlanes && nodes === 1 ? ["control-plane", "worker"] : ["control-plane"];
    out.push({ node: `${cluster}-control-plane${i === 0 ? "" : i + 1}`, roles });
  }
  for (let i = 0; i < nodes - controlPlanes; i++) out.push({ node: `${cluster}-worker${i === 0 ? "" : i + 1}`, roles: ["worker"] });
  for (let i = 0; i < etcdNodes; i++) out.push({ node: `${cluster}-etcd${i === 0 ? "" : i + 1}`, roles: ["etcd"] });
  return out;
}

// ---- IPv4 arithmetic ------------------------------------------------------------------------

export interface Cidr {
  base: number; // network address as an unsigned 32-bit number
  bits: number;
}

export function ipToInt(ip: string): number {
  const parts = ip.split(".").map((p) => Number(p));
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  return ((parts[0] << 24) >>> 0) + (parts[1] << 16) + (parts[2] << 8) + parts[3];
}

export function intToIp(n: number): string {
  return [(n >>> 24) & 255, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

/** Parses "a.b.c.d/n" (or a bare address as /32); undefined for IPv6 or junk. */
export function parseCidr(text: string): Cidr | undefined {
  const m = /^(\d+\.\d+\.\d+\.\d+)(?:\/(\d+))?$/.exec(text.trim());
  if (!m) return undefined;
  const bits = m[2] === undefined ? 32 : Number(m[2]);
  if (bits < 0 || bits > 32) return undefined;
  let ip: number;
  try {
    ip = ipToInt(m[1]);
  } catch {
    return undefined;
  }
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return { base: (ip & mask) >>> 0, bits };
}

export function formatCidr(c: Cidr): string {
  return `${intToIp(c.base)}/${c.bits}`;
}

function size(c: Cidr): number {
  return 2 ** (32 - c.bits);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  const aEnd = a.base + size(a) - 1;
  const bEnd = b.base + size(b) - 1;
  return a.base <= bEnd && b.base <= aEnd;
}

/**
 * The subnets (/24) inside the pool that overlap nothing in `inUse` (docker networks' subnets and
 * host routes), in order. A default route (0.0.0.0/0) is not "in use": it is where everything
 * else goes. The caller tries them in order and moves on when docker says a pool overlaps (a race
 * with another `up`).
 */
export function freeSubnets(inUse: string[], pool: string = DOCKER_NETWORK_POOL): string[] {
  const p = parseCidr(pool);
  if (!p || p.bits > 24) throw new Error(`bad network pool ${pool}`);
  const used = inUse.map(parseCidr).filter((c): c is Cidr => !!c && c.bits > 0);
  const out: string[] = [];
  for (let base = p.base; base < p.base + size(p); base += 256) {
    const c: Cidr = { base, bits: 24 };
    if (!used.some((u) => overlaps(u, c))) out.push(formatCidr(c));
  }
  return out;
}

/** Host number `n` of a /24: hostAddress("10.213.4.0/24", 10) = "10.213.4.10". */
export function hostAddress(subnet: string, n: number): string {
  const c = parseCidr(subnet);
  if (!c) throw new Error(`bad subnet ${subnet}`);
  if (n <= 0 || n >= size(c) - 1) throw new Error(`host ${n} is outside ${subnet}`);
  return intToIp(c.base + n);
}

export function gatewayAddress(subnet: string): string {
  return hostAddress(subnet, 1);
}

export function virtualIPAddress(subnet: string): string {
  return hostAddress(subnet, VIP_HOST);
}

/**
 * Addresses for the nodes that have none yet: node i prefers .10+i (stable across runs), and
 * takes the next free one when that is held by another node. `taken` holds the addresses of
 * existing containers.
 */
export function assignAddresses(subnet: string, nodes: string[], existing: Map<string, string>): Map<string, string> {
  const result = new Map<string, string>();
  const taken = new Set(existing.values());
  nodes.forEach((node, i) => {
    const have = existing.get(node);
    if (have) result.set(node, have);
  });
  nodes.forEach((node, i) => {
    if (result.has(node)) return;
    let n = FIRST_NODE_HOST + i;
    const tryFirst = n <= LAST_NODE_HOST ? hostAddress(subnet, n) : undefined;
    if (tryFirst && !taken.has(tryFirst)) {
      result.set(node, tryFirst);
      taken.add(tryFirst);
      return;
    }
    for (n = FIRST_NODE_HOST; n <= LAST_NODE_HOST; n++) {
      const a = hostAddress(subnet, n);
      if (!taken.has(a)) {
        result.set(node, a);
        taken.add(a);
        return;
      }
    }
    throw new Error(`no free node address left in ${subnet} (at most ${LAST_NODE_HOST - FIRST_NODE_HOST + 1} nodes per cluster)`);
  });
  return result;
}

/** Most nodes a cluster can have (addresses .10 to .99). */
export const MAX_NODES = LAST_NODE_HOST - FIRST_NODE_HOST + 1;

export interface NodeRunPlan {
  cluster: string;
  node: string;
  roles: Role[];
  address: string;
  network: string;
  image: string;
  volume: string;
  cpus?: number;
  memory?: number;
  shared?: SharedDirectory[];
}

export function nodeLabels(cluster: string, node: string, roles: Role[]): Record<string, string> {
  return {
    [DOCKER_LABEL_CLUSTER]: cluster,
    [DOCKER_LABEL_NODE]: node,
    [DOCKER_LABEL_ROLE]: roles.join(","),
  };
}

/**
 * The `docker run` arguments of a node (DESIGN "What runs for real": no --privileged; every
 * capability but SYS_RESOURCE, SYS_MODULE, SYS_TIME and SYS_BOOT; the host's cgroup namespace
 * with /sys/fs/cgroup writable; tmpfs /run; systemd's halt signal to stop). Restart policy
 * unless-stopped: when the Docker engine restarts, the nodes that were running boot again by
 * themselves, while nodes stopped on purpose (`kubeprov stop`, `docker stop`) stay stopped.
 */
export function dockerRunArgs(p: NodeRunPlan): string[] {
  const labels = Object.entries(nodeLabels(p.cluster, p.node, p.roles)).flatMap(([k, v]) => ["--label", `${k}=${v}`]);
  const limits: string[] = [];
  if (p.cpus !== undefined) limits.push("--cpus", String(p.cpus));
  if (p.memory !== undefined) limits.push("--memory", `${p.memory}b`);
  return [
    "run",
    "--detach",
    "--name", p.node,
    "--hostname", p.node,
    ...labels,
    "--network", p.network,
    "--ip", p.address,
    "--restart", "unless-stopped",
    "--cgroupns=host",
    "--volume", "/sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs", "/run",
    "--tmpfs", "/run/lock",
    // A named volume created on first use, labelled for cleanup (`docker volume create` in one go).
    "--mount", `type=volume,src=${p.volume},dst=/var/lib/containerd,volume-label=${DOCKER_LABEL_CLUSTER}=${p.cluster},volume-label=${DOCKER_LABEL_NODE}=${p.node}`,
    "--cap-add", "ALL",
    "--cap-drop", "SYS_RESOURCE",
    "--cap-drop", "SYS_MODULE",
    "--cap-drop", "SYS_TIME",
    "--cap-drop", "SYS_BOOT",
    "--stop-signal", "SIGRTMIN+3",
    "--security-opt", "seccomp=unconfined",
    "--security-opt", "apparmor=unconfined",
    "--device-cgroup-rule", "a *:* rwm",
    "--env", "container=docker",
    ...(p.shared ?? []).flatMap((d) => ["--volume", `${d.hostPath}:${d.machinePath}:${d.readOnly ? "ro" : "rw"}`]),
    ...limits,
    p.image,
    "/sbin/init",
  ];
}

/** "2g", "512m", "1073741824" → bytes (binary units, as docker reads them). */
export function parseMemory(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?$/i.exec(text.trim());
  if (!m) return undefined;
  const mult = { "": 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2].toLowerCase() as "" | "k" | "m" | "g" | "t"];
  const v = Math.round(Number(m[1]) * mult);
  return v > 0 ? v : undefined;
}
