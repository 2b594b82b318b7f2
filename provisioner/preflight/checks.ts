// The preflight checks as data: a stable ID (kubeadm's name where kubeadm has one), the roles a
// check applies to, its severity, and a pure evaluation of the sections gathered from the host
// (gather.ts). Nothing here touches a host.
import type { Cluster, Role } from "../spec/schema.js";
import {
  CLUSTER_MARKER_FILE,
  ETCD_DATA_DIR,
  PORT_APISERVER,
  PORT_CONTROLLER_MANAGER,
  PORT_ETCD_CLIENT,
  PORT_ETCD_PEER,
  PORT_KUBELET,
  PORT_SCHEDULER,
  DNS1123_LABEL,
} from "../constants.js";
import { canonicalCIDR, cidrContains } from "../spec/cidr.js";
import { isIP } from "node:net";
import { parse as parseYaml } from "yaml";
import { decideCri, normaliseSocket } from "./cri.js";
import {
  CONTROL_PLANE_FILES,
  CURL_FAILURES,
  MODULES,
  NODE_FILES,
  OPTIONAL_BINARIES,
  REQUIRED_BINARIES,
  SYSCTLS,
  type Sections,
} from "./gather.js";

export type CheckStatus = "pass" | "warn" | "fail";
export type Severity = "error" | "warning";

export interface PreflightInput {
  /** The node name from the cluster file. */
  host: string;
  roles: Role[];
  nodeIP: string;
  cluster: Cluster;
  sections: Sections;
  /** Seconds since the epoch on the machine kubeprov runs on, when the host printed its clock. */
  localTime: number;
  /** criSocket from the host, else spec.containerRuntime. */
  criSocket?: string;
}

export interface Evaluation {
  status: CheckStatus;
  message: string;
}

export interface CheckDef {
  id: string;
  /** The check runs on a host that has at least one of these roles. */
  roles: readonly Role[];
  /** The worst status it can give: error → fail, warning → warn. */
  severity: Severity;
  title: string;
  /** A --fix exists for this check (fixes.ts). */
  fixable?: boolean;
  evaluate(input: PreflightInput): Evaluation;
}

export interface CheckResultLine extends Evaluation {
  id: string;
  /** A failure turned into a warning by --ignore-preflight-errors. */
  ignored?: boolean;
}

const ALL: readonly Role[] = ["control-plane", "worker"];
const CP: readonly Role[] = ["control-plane"];

export const MIN_CPUS = 2;
export const MIN_MEMORY_MB = 1700;
export const MAX_CLOCK_SKEW_S = 30;
export const NODEPORT_MIN = 30000;
export const NODEPORT_MAX = 32767;

const pass = (message: string): Evaluation => ({ status: "pass", message });
const warn = (message: string): Evaluation => ({ status: "warn", message });
const fail = (message: string): Evaluation => ({ status: "fail", message });

// ---------- small parsers (exported for tests) ----------

export function lines(text: string | undefined): string[] {
  return (text ?? "")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
}

/** spec.networking of the cluster file stored in the cluster (kube-system/kubeprov-config), if there is one. */
type StoredNetworking = { cni?: string; podSubnet?: string; serviceSubnet?: string; flannelBackend?: string };
export function storedNetworking(text: string | undefined): StoredNetworking | undefined {
  if (!text?.trim()) return undefined;
  try {
    const doc = parseYaml(text) as { spec?: { networking?: StoredNetworking } };
    return doc?.spec?.networking ?? undefined;
  } catch {
    return undefined;
  }
}

/** The subnets (CIDR) of one interface's addresses, from lines "IFACE inet|inet6 ADDR/PREFIX". */
export function interfaceSubnets(text: string | undefined, iface: string): string[] {
  return lines(text)
    .map((l) => l.split(/\s+/))
    .filter(([dev, family, cidr]) => dev === iface && (family === "inet" || family === "inet6") && cidr?.includes("/"))
    .map(([, , cidr]) => canonicalCIDR(cidr!));
}

/** Active swap devices from /proc/swaps (header skipped). */
export function parseSwaps(text: string | undefined): string[] {
  return lines(text)
    .filter((l) => !l.startsWith("Filename"))
    .map((l) => l.split(/\s+/)[0]!);
}

/** Uncommented swap entries of /etc/fstab. */
export function fstabSwapLines(text: string | undefined): string[] {
  return lines(text).filter((l) => !l.startsWith("#") && l.split(/\s+/)[2] === "swap");
}

export interface Listener {
  address: string;
  port: number;
  process?: string;
}

/** `ss -ltn[p]H` lines: State Recv-Q Send-Q Local Peer [Process]. */
export function parseTcpListeners(text: string | undefined): Listener[] {
  const out: Listener[] = [];
  for (const l of lines(text)) {
    const f = l.split(/\s+/);
    const local = f[3];
    if (!local) continue;
    const i = local.lastIndexOf(":");
    const port = Number(local.slice(i + 1));
    if (!Number.isInteger(port)) continue;
    const proc = /users:\(\("([^"]+)"/.exec(l)?.[1];
    out.push({ address: local.slice(0, i), port, process: proc });
  }
  return out;
}

/** Binaries section: "name /path" or "name -". */
export function parseBinaries(text: string | undefined): Map<string, string | undefined> {
  const m = new Map<string, string | undefined>();
  for (const l of lines(text)) {
    const [name, path] = l.split(/\s+/);
    if (name) m.set(name, path && path !== "-" ? path : undefined);
  }
  return m;
}

export interface PortRange {
  from: number;
  to: number;
  proto: "tcp" | "udp";
}

export function formatRange(r: PortRange, sep = "-"): string {
  return r.from === r.to ? `${r.from}/${r.proto}` : `${r.from}${sep}${r.to}/${r.proto}`;
}

/** firewall-cmd --list-ports ("6443/tcp 2379-2380/tcp"). */
export function parseFirewalldPorts(text: string | undefined): PortRange[] {
  const out: PortRange[] = [];
  for (const w of (text ?? "").split(/\s+/)) {
    const m = /^(\d+)(?:-(\d+))?\/(tcp|udp)$/.exec(w);
    if (m) out.push({ from: Number(m[1]), to: Number(m[2] ?? m[1]), proto: m[3] as "tcp" | "udp" });
  }
  return out;
}

/** `ufw status`: active flag and ALLOW rules ("6443/tcp", "30000:32767/tcp", "6443"). */
export function parseUfw(text: string | undefined): { active: boolean; allowed: PortRange[] } {
  const ls = lines(text);
  const active = ls.some((l) => /^Status:\s*active/i.test(l));
  const allowed: PortRange[] = [];
  for (const l of ls) {
    if (!/\bALLOW\b/.test(l)) continue;
    const m = /^(\d+)(?::(\d+))?(?:\/(tcp|udp))?\b/.exec(l);
    if (!m) continue;
    const from = Number(m[1]);
    const to = Number(m[2] ?? m[1]);
    const protos: ("tcp" | "udp")[] = m[3] ? [m[3] as "tcp" | "udp"] : ["tcp", "udp"];
    for (const proto of protos) allowed.push({ from, to, proto });
  }
  return { active, allowed };
}

export function covered(need: PortRange, have: PortRange[]): boolean {
  return have.some((h) => h.proto === need.proto && h.from <= need.from && need.to <= h.to);
}

/** Ports a role needs reachable from other nodes (for the firewall checks and fixes). */
export function rolePorts(roles: readonly Role[], cluster: Cluster): PortRange[] {
  const out: PortRange[] = [];
  const add = (from: number, to = from) => {
    if (!out.some((r) => r.from === from && r.to === to)) out.push({ from, to, proto: "tcp" });
  };
  if (roles.includes("control-plane")) {
    add(PORT_APISERVER);
    add(PORT_ETCD_CLIENT, PORT_ETCD_PEER);
    add(PORT_KUBELET);
    add(PORT_CONTROLLER_MANAGER);
    add(PORT_SCHEDULER);
    if (cluster.spec.ha.enabled) add(cluster.spec.ha.haproxyPort);
  }
  if (roles.includes("etcd")) add(PORT_ETCD_CLIENT, PORT_ETCD_PEER);
  if (roles.includes("worker")) {
    add(PORT_KUBELET);
    add(NODEPORT_MIN, NODEPORT_MAX);
  }
  return out;
}

export function listeningUnixSockets(s: Sections): string[] {
  const present = lines(s["sockets"]).map((l) => l.split(/\s+/)[0]!);
  if ((s["listening-known"] ?? "no") !== "yes") return present; // no ss, no /proc/net/unix: a socket file is all we can see
  const listening = new Set(lines(s["unix-listening"]).map(normaliseSocket));
  return present.filter((p) => listening.has(normaliseSocket(p)));
}

export interface ModuleState {
  name: string;
  loaded: boolean;
  builtin: boolean;
  /** How it was seen (for messages). */
  evidence?: string;
}

const KCONFIG: Record<string, string> = { br_netfilter: "CONFIG_BRIDGE_NETFILTER", overlay: "CONFIG_OVERLAY_FS" };

export function moduleState(name: string, s: Sections): ModuleState {
  const procModules = s["proc-modules"] ?? "";
  if (lines(procModules).includes(name)) return { name, loaded: true, builtin: false, evidence: "loaded (/proc/modules)" };
  if (lines(s["modules-builtin"]).some((l) => l.endsWith(`/${name}.ko`))) return { name, loaded: true, builtin: true, evidence: "built into the kernel (modules.builtin)" };
  if (lines(s["kernel-config"]).includes(`${KCONFIG[name]}=y`)) return { name, loaded: true, builtin: true, evidence: "built into the kernel (kernel config)" };
  // No module list (a container): the kernel's own interfaces show the feature is there.
  if (name === "br_netfilter" && s["bridge-sysctl-dir"] === "yes") return { name, loaded: true, builtin: false, evidence: "/proc/sys/net/bridge exists" };
  if (name === "overlay" && /\boverlay\b/.test(s["filesystems"] ?? "")) return { name, loaded: true, builtin: false, evidence: "overlay in /proc/filesystems" };
  return { name, loaded: false, builtin: false };
}

/** A module that needs no modprobe and no modules-load.d entry (built in, or no module list to manage: a container). */
export function moduleNeedsNoPersist(m: ModuleState, s: Sections): boolean {
  return m.builtin || (s["proc-modules"] ?? "").includes("(no /proc/modules)");
}

export function sysctlValues(s: Sections): Map<string, { value: string; writable: boolean }> {
  const m = new Map<string, { value: string; writable: boolean }>();
  for (const l of lines(s["sysctls"])) {
    const [key, value, rw] = l.split(/\s+/);
    if (key) m.set(key, { value: value ?? "-", writable: rw === "rw" });
  }
  return m;
}

export function kubeMinor(version: string): number {
  return Number(/^v?\d+\.(\d+)/.exec(version)?.[1] ?? 0);
}

/** This host already carries this cluster (kubeprov wrote the marker): re-runs must pass. */
export function initialisedFor(s: Sections): string | undefined {
  const m = (s["marker"] ?? "").trim();
  return m.length > 0 ? m : undefined;
}

function ownedByThisCluster(input: PreflightInput): boolean {
  return initialisedFor(input.sections) === input.cluster.metadata.name;
}

const DNS1123_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

// ---------- the table ----------

function portCheck(port: number, roles: readonly Role[], what: string): CheckDef {
  return {
    id: `Port-${port}`,
    roles,
    severity: "error",
    title: `port ${port} (${what}) is free`,
    evaluate(input) {
      const l = parseTcpListeners(input.sections["tcp-listening"]).filter((x) => x.port === port);
      if (l.length === 0) return pass(`port ${port} is free`);
      if (ownedByThisCluster(input)) return pass(`port ${port} in use by this cluster's ${what} (host already set up for ${input.cluster.metadata.name})`);
      const who = [...new Set(l.map((x) => x.process).filter(Boolean))].join(", ");
      return fail(`port ${port} is in use${who ? ` by ${who}` : ""} (${l.map((x) => `${x.address}:${x.port}`).join(", ")}); the ${what} needs it: stop what listens there`);
    },
  };
}

function fileAvailable(path: string, roles: readonly Role[]): CheckDef {
  return {
    id: `FileAvailable-${path.replace(/\//g, "-")}`,
    roles,
    severity: "error",
    title: `${path} does not exist yet`,
    evaluate(input) {
      const exists = lines(input.sections["existing-files"]).includes(path);
      if (!exists) return pass(`${path} does not exist`);
      const owner = initialisedFor(input.sections);
      if (owner === input.cluster.metadata.name) return pass(`${path} exists: written by kubeprov for this cluster (${owner})`);
      return fail(
        owner
          ? `${path} exists and this host belongs to cluster ${owner} (${CLUSTER_MARKER_FILE}); run \`kubeprov reset\` for that cluster first`
          : `${path} already exists and would be overwritten: this host was set up by something else (kubeadm?); reset it (kubeadm reset / kubeprov reset) or remove the file`,
      );
    },
  };
}

function binaryCheck(name: string, severity: Severity): CheckDef {
  return {
    id: `FileExisting-${name}`,
    roles: ALL,
    severity,
    title: `${name} is in PATH`,
    evaluate(input) {
      const p = parseBinaries(input.sections["binaries"]).get(name);
      if (p) return pass(`${name} found at ${p}`);
      const msg = `${name} not found in PATH: install it (Debian/Ubuntu: apt-get install ${aptPackageOf(name)}; RHEL family: dnf install ${rpmPackageOf(name)})`;
      return severity === "error" ? fail(msg) : warn(msg);
    },
  };
}

export function aptPackageOf(bin: string): string {
  return ({ ip: "iproute2", tc: "iproute2", mount: "mount", nsenter: "util-linux" } as Record<string, string>)[bin] ?? bin;
}
export function rpmPackageOf(bin: string): string {
  return ({ ip: "iproute", tc: "iproute-tc", mount: "util-linux", nsenter: "util-linux", conntrack: "conntrack-tools" } as Record<string, string>)[bin] ?? bin;
}

function moduleCheck(name: string): CheckDef {
  return {
    id: `KernelModule-${name}`,
    roles: ALL,
    severity: "error",
    title: `kernel module ${name} available`,
    fixable: true,
    evaluate(input) {
      const m = moduleState(name, input.sections);
      if (m.loaded) return pass(`${name}: ${m.evidence}`);
      return fail(`kernel module ${name} is not loaded: run \`modprobe ${name}\` and list it in /etc/modules-load.d/ (--fix does both)`);
    },
  };
}

function sysctlCheck(key: string): CheckDef {
  const path = "/proc/sys/" + key.replace(/\./g, "/");
  return {
    id: `FileContent-${path.replace(/\//g, "-")}`,
    roles: ALL,
    severity: "error",
    title: `${key} = 1`,
    fixable: true,
    evaluate(input) {
      const v = sysctlValues(input.sections).get(key);
      if (v?.value === "1") return pass(`${path} is 1`);
      if (!v || v.value === "-") return fail(`${path} does not exist${key.startsWith("net.bridge.") ? ": load br_netfilter first (KernelModule-br_netfilter)" : ""}; it must be 1`);
      if (!v.writable) return fail(`${path} is ${v.value}, must be 1, and /proc/sys is read-only here (a container?): set ${key}=1 on the machine that runs it`);
      return fail(`${path} is ${v.value}, must be 1: set ${key} = 1 in /etc/sysctl.d/ and run \`sysctl --system\` (--fix does it)`);
    },
  };
}

export const CHECKS: readonly CheckDef[] = [
  {
    id: "IsPrivilegedUser",
    roles: ALL,
    severity: "error",
    title: "commands run as root",
    evaluate: (i) => ((i.sections["uid"] ?? "").trim() === "0" ? pass("running as root") : fail(`commands run as uid ${i.sections["uid"]}: connect as root or give the SSH user passwordless sudo`)),
  },
  {
    id: "Swap",
    roles: ALL,
    severity: "error",
    title: "swap is off",
    fixable: true,
    evaluate(i) {
      const on = parseSwaps(i.sections["swaps"]);
      const fst = fstabSwapLines(i.sections["fstab"]);
      if (on.length > 0) return fail(`swap is on (${on.join(", ")}): the kubelet refuses to start; run \`swapoff -a\` and comment swap out of /etc/fstab (--fix does both)`);
      if (fst.length > 0) return warn(`swap is off but /etc/fstab turns it on at boot (${fst.map((l) => l.split(/\s+/)[0]).join(", ")}): comment those lines (--fix)`);
      return pass("swap is off");
    },
  },
  {
    id: "Firewalld",
    roles: ALL,
    severity: "warning",
    title: "firewalld leaves the role's ports open",
    fixable: true,
    evaluate(i) {
      if ((i.sections["firewalld"] ?? "").trim() !== "active") return pass("firewalld is not active");
      const have = parseFirewalldPorts(i.sections["firewalld-ports"]);
      const missing = rolePorts(i.roles, i.cluster).filter((p) => !covered(p, have));
      if (missing.length === 0) return pass("firewalld is active and the role's ports are open");
      return warn(`firewalld is active and ports ${missing.map((p) => formatRange(p)).join(", ")} are not open: \`firewall-cmd --permanent --add-port=PORT/tcp\` then \`firewall-cmd --reload\`, or disable firewalld (--fix does what spec.firewall says: ${i.cluster.spec.firewall})`);
    },
  },
  {
    id: "Ufw",
    roles: ALL,
    severity: "warning",
    title: "ufw leaves the role's ports open",
    fixable: true,
    evaluate(i) {
      const u = parseUfw(i.sections["ufw"]);
      if (!u.active) return pass("ufw is not active");
      const missing = rolePorts(i.roles, i.cluster).filter((p) => !covered(p, u.allowed));
      if (missing.length === 0) return pass("ufw is active and the role's ports are allowed");
      return warn(`ufw is active and ports ${missing.map((p) => formatRange(p, ":")).join(", ")} are not allowed: \`ufw allow PORT/tcp\`, or \`ufw disable\` (--fix does what spec.firewall says: ${i.cluster.spec.firewall})`);
    },
  },
  {
    id: "SELinux",
    roles: ALL,
    severity: "warning",
    title: "SELinux is not enforcing",
    fixable: true,
    evaluate(i) {
      const mode = (i.sections["selinux"] ?? "").trim();
      if (mode === "Enforcing") return warn("SELinux is enforcing: containers may be denied access to host paths; set it to permissive (`setenforce 0` and SELINUX=permissive in /etc/selinux/config; --fix does both)");
      if (/SELINUX=enforcing/.test(i.sections["selinux-config"] ?? "")) return warn("SELinux is permissive now but /etc/selinux/config makes it enforcing at boot: set SELINUX=permissive (--fix)");
      return pass(`SELinux: ${mode || "not present"}`);
    },
  },
  {
    id: "CRI",
    roles: ALL,
    severity: "error",
    title: "one container runtime socket (or none: containerd is installed)",
    evaluate(i) {
      const listening = listeningUnixSockets(i.sections);
      const d = decideCri(listening, i.criSocket);
      if (d.kind === "error") return fail(d.reason);
      if (d.kind === "none") return pass(d.reason);
      if (i.criSocket) {
        const up = listening.map(normaliseSocket).includes(normaliseSocket(d.socket));
        if (up) return pass(`${d.reason}; it is listening`);
        if (d.runtime === "containerd") return pass(`${d.reason}; not listening yet: prepare configures and starts containerd`);
        return fail(`${d.reason}, but nothing listens on ${d.socket}: start that runtime or correct criSocket`);
      }
      return pass(`using ${d.socket}: ${d.reason}`);
    },
  },
  {
    id: "CgroupDriver",
    roles: ALL,
    severity: "error",
    title: "the runtime's cgroup driver matches containerRuntime.cgroupDriver",
    evaluate(i) {
      const want = i.cluster.spec.containerRuntime.cgroupDriver;
      const d = decideCri(listeningUnixSockets(i.sections), i.criSocket);
      if (d.kind === "use" && d.runtime === "docker") {
        const got = (i.sections["docker-cgroup-driver"] ?? "").trim();
        if (!got) return warn("cannot read Docker's cgroup driver (docker info); make sure it is " + want);
        return got === want ? pass(`Docker uses the ${got} cgroup driver`) : fail(`Docker uses the ${got} cgroup driver but spec.containerRuntime.cgroupDriver is ${want}: change one of them so they match`);
      }
      if (d.kind === "use" && d.runtime !== "containerd") return pass(`${d.runtime}: not checked (configure its cgroup driver as ${want})`);
      const cfg = i.sections["containerd-config"] ?? "";
      if (/managed by kubeprov/.test(cfg)) return pass(`containerd configured by kubeprov (kept at ${want})`);
      const m = /SystemdCgroup\s*=\s*(true|false)/.exec(cfg);
      if (!m) return pass(`containerd not configured yet: prepare writes its configuration with the ${want} cgroup driver`);
      const got = m[1] === "true" ? "systemd" : "cgroupfs";
      return got === want ? pass(`containerd uses the ${got} cgroup driver`) : warn(`containerd's configuration uses the ${got} cgroup driver but spec.containerRuntime.cgroupDriver is ${want}: prepare replaces /etc/containerd/config.toml (set cgroupDriver: ${got} to keep it)`);
    },
  },
  {
    id: "SystemVerification",
    roles: ALL,
    severity: "warning",
    title: "cgroup version suits the Kubernetes version",
    evaluate(i) {
      const fs = (i.sections["cgroupfs"] ?? "").trim();
      const v = i.cluster.spec.kubernetesVersion;
      if (fs === "cgroup2fs") return pass("cgroup v2");
      if (fs === "tmpfs") {
        if (kubeMinor(v) >= 35) return warn(`cgroup v1 host: Kubernetes ${v} refuses cgroup v1 unless the kubelet configuration says failCgroupV1: false, which kubeprov sets; cgroup v1 support is being removed: move the host to cgroup v2`);
        return warn("cgroup v1 host: cgroup v1 is deprecated in Kubernetes; move the host to cgroup v2");
      }
      return fail(`cannot tell the cgroup version (/sys/fs/cgroup is ${fs || "missing"}): mount cgroups (v2 preferred)`);
    },
  },
  {
    id: "NumCPU",
    roles: CP,
    severity: "error",
    title: `at least ${MIN_CPUS} CPUs`,
    evaluate(i) {
      const n = Number((i.sections["nproc"] ?? "").trim());
      return n >= MIN_CPUS ? pass(`${n} CPUs`) : fail(`the control plane needs at least ${MIN_CPUS} CPUs, this host has ${n}: give it more`);
    },
  },
  {
    id: "Mem",
    roles: CP,
    severity: "error",
    title: `at least ${MIN_MEMORY_MB} MB of memory`,
    evaluate(i) {
      const kb = Number(/MemTotal:\s+(\d+)/.exec(i.sections["meminfo"] ?? "")?.[1] ?? 0);
      const mb = Math.floor(kb / 1024);
      return mb >= MIN_MEMORY_MB ? pass(`${mb} MB of memory`) : fail(`the control plane needs at least ${MIN_MEMORY_MB} MB of memory, this host has ${mb} MB: give it more`);
    },
  },
  {
    id: "NetworkUnchanged",
    roles: CP,
    severity: "error",
    title: "a running cluster keeps its network add-on and its pod and Service subnets",
    evaluate(i) {
      const stored = storedNetworking(i.sections["stored-cluster"]);
      if (!stored) return pass("no running cluster recorded on this host yet");
      const now = i.cluster.spec.networking;
      const keys = ["cni", "podSubnet", "serviceSubnet", ...(now.cni === "flannel" && stored.cni === "flannel" ? (["flannelBackend"] as const) : [])] as const;
      const changed = keys.filter((k) => stored[k] !== undefined && stored[k] !== now[k]);
      if (!changed.length) return pass(`network add-on ${now.cni}${now.cni === "flannel" ? ` (${now.flannelBackend})` : ""}, pods ${now.podSubnet}, Services ${now.serviceSubnet}, as the cluster runs`);
      return fail(
        changed.map((k) => `spec.networking.${k}: the cluster runs with ${JSON.stringify(stored[k])}, the file says ${JSON.stringify(now[k])}`).join("; ") +
          ": a running cluster's network cannot be switched in place (pods keep their addresses and routes); set it back, or reset the cluster and apply again",
      );
    },
  },
  {
    id: "FlannelBackend",
    roles: ALL,
    severity: "error",
    title: "flannel's backend can work here: host-gw needs every node on one L2 network, vxlan a kernel that makes vxlan interfaces",
    evaluate(i) {
      const net = i.cluster.spec.networking;
      if (net.cni !== "flannel") return pass(`network add-on ${net.cni}: flannel is not used`);
      if (net.flannelBackend === "vxlan") {
        const v = (i.sections["vxlan"] ?? "").trim();
        if (v === "yes") return pass("the kernel makes vxlan interfaces (tried in a throw-away network namespace)");
        if (v === "no") return fail("spec.networking.flannelBackend: vxlan, but this kernel could not make a vxlan interface (`ip link add … type vxlan` failed in a throw-away network namespace): load the vxlan module (`modprobe vxlan`), or use host-gw if every node shares one L2 network");
        return warn("could not try a vxlan interface here (unshare or ip missing); flannel's vxlan backend needs the kernel's vxlan support");
      }
      // host-gw routes each node's pod CIDR through that node's address as the next hop, so every
      // other node's address must be on a subnet this host is directly attached to.
      const subnets = lines(i.sections["addresses"])
        .map((l) => l.split(/\s+/))
        .filter(([, family, cidr]) => family === "inet" && cidr?.includes("/"))
        .map(([, , cidr]) => canonicalCIDR(cidr!))
        .filter((n) => !n.startsWith("127."));
      if (!subnets.length) return warn("no IPv4 address found on this host's interfaces: cannot tell whether the other nodes are on its L2 network");
      const away = i.cluster.spec.hosts
        .filter((h) => h.name !== i.host)
        .map((h) => ({ name: h.name, ip: h.internalAddress ?? h.address }))
        .filter((h) => isIP(h.ip) === 4 && !subnets.some((n) => cidrContains(n, h.ip)));
      if (!away.length) return pass(`the other nodes are on this host's subnets (${subnets.join(", ")}): host-gw routes reach them directly`);
      return fail(
        `spec.networking.flannelBackend: host-gw needs every node on one L2 network, but ${away.map((h) => `${h.name} (${h.ip})`).join(", ")} ` +
          `${away.length === 1 ? "is" : "are"} on none of this host's subnets (${subnets.join(", ")}): set spec.networking.flannelBackend: vxlan`,
      );
    },
  },
  {
    id: "RegistryMirrors",
    roles: ALL,
    severity: "error",
    title: "every registry mirror of the cluster file answers from this host",
    evaluate(i) {
      const mirrors = Object.entries(i.cluster.spec.registryMirrors);
      if (!mirrors.length) return pass("no registry mirrors in the cluster file");
      const seen = new Map<string, { exit: string; code: string }>();
      for (const l of lines(i.sections["mirrors"])) {
        const [url, exit, code] = l.split(" ");
        if (url === "-") return warn("curl is not on this host: the registry mirrors could not be tried from here");
        seen.set(url!, { exit: exit ?? "", code: code ?? "" });
      }
      const down: string[] = [];
      for (const [registry, urls] of mirrors) {
        for (const url of urls) {
          const r = seen.get(url);
          const images = registry === "_default" ? "any registry's images" : `${registry}'s images (${registry}/…)`;
          // A registry answers its API root with 200, or 401 when it wants a login.
          if (r && r.exit === "0" && (r.code === "200" || r.code === "401")) continue;
          const why = !r ? "not tried" : r.exit !== "0" ? (CURL_FAILURES[r.exit] ?? `curl exit ${r.exit}`) : `it answers HTTP ${r.code} at /v2/, which is not a registry's answer`;
          down.push(`spec.registryMirrors[${JSON.stringify(registry)}]: ${url} does not work from here (${why}): pulls of ${images} that no node holds would fail through it`);
        }
      }
      if (down.length) return fail(down.join("; "));
      return pass(`${seen.size} mirror(s) answer at /v2/`);
    },
  },
  {
    id: "HAVirtualIP",
    roles: CP,
    severity: "error",
    title: "the HA virtual IP lies inside a subnet of the interface keepalived puts it on",
    evaluate(i) {
      const ha = i.cluster.spec.ha;
      if (!ha.enabled || !ha.virtualIP) return pass("no HA virtual IP in the cluster file");
      const nets = interfaceSubnets(i.sections["addresses"], ha.interface);
      if (!nets.length) return fail(`spec.ha.interface: ${ha.interface} has no IP address on this host (addresses: ${lines(i.sections["addresses"]).map((l) => l.split(" ").join(" ")).join(", ") || "none"})`);
      const home = nets.find((n) => cidrContains(n, ha.virtualIP!));
      if (!home) return fail(`spec.ha.virtualIP: ${ha.virtualIP} is outside the subnets of ${ha.interface} (${nets.join(", ")}): keepalived's ARP announcements would not reach the other control planes`);
      return pass(`virtual IP ${ha.virtualIP} is in ${home} on ${ha.interface}`);
    },
  },
  {
    id: "Hostname",
    roles: ALL,
    severity: "error",
    title: "hostname is the node name, a lowercase DNS-1123 name, and resolves",
    fixable: true,
    evaluate(i) {
      const h = (i.sections["hostname"] ?? "").trim();
      if (!DNS1123_SUBDOMAIN.test(h)) return fail(`hostname "${h}" is not a lowercase DNS-1123 name: set it to ${i.host} (--fix)`);
      if (h !== i.host) return fail(`hostname is "${h}" but the node is named ${i.host} in the cluster file: set the hostname to ${i.host} (--fix) or rename the host in the cluster file`);
      if (!DNS1123_LABEL.test(h.split(".")[0]!)) return fail(`hostname "${h}" is not a valid DNS-1123 name`);
      if (lines(i.sections["getent"]).length === 0) return warn(`hostname ${h} does not resolve (getent hosts ${h}): add it to /etc/hosts or DNS (--fix adds "${i.nodeIP} ${h}" to /etc/hosts)`);
      return pass(`hostname ${h} resolves to ${lines(i.sections["getent"])[0]!.split(/\s+/)[0]}`);
    },
  },
  {
    id: "TimeSkew",
    roles: ALL,
    severity: "warning",
    title: `clock within ${MAX_CLOCK_SKEW_S}s of this machine`,
    evaluate(i) {
      const t = Number((i.sections["time"] ?? "").trim());
      if (!Number.isFinite(t) || t <= 0) return warn("cannot read the host's clock (date +%s)");
      const skew = Math.round(t - i.localTime);
      if (Math.abs(skew) > MAX_CLOCK_SKEW_S) return warn(`clock is ${skew > 0 ? "ahead" : "behind"} by ${Math.abs(skew)}s (more than ${MAX_CLOCK_SKEW_S}s): certificates may look not yet valid or expired; run NTP (chrony or systemd-timesyncd) on every host`);
      return pass(`clock skew ${skew}s`);
    },
  },
  ...[
    [PORT_APISERVER, "kube-apiserver"],
    [PORT_ETCD_CLIENT, "etcd client"],
    [PORT_ETCD_PEER, "etcd peer"],
    [PORT_CONTROLLER_MANAGER, "kube-controller-manager"],
    [PORT_SCHEDULER, "kube-scheduler"],
  ].map(([p, w]) => portCheck(p as number, CP, w as string)),
  portCheck(PORT_KUBELET, ALL, "kubelet"),
  {
    id: `Port-${NODEPORT_MIN}-${NODEPORT_MAX}`,
    roles: ALL,
    severity: "warning",
    title: "NodePort range free of listeners",
    evaluate(i) {
      const l = parseTcpListeners(i.sections["tcp-listening"]).filter((x) => x.port >= NODEPORT_MIN && x.port <= NODEPORT_MAX);
      if (l.length === 0) return pass(`no listener in ${NODEPORT_MIN}-${NODEPORT_MAX}`);
      return warn(`listeners in the NodePort range ${NODEPORT_MIN}-${NODEPORT_MAX}: ${l.map((x) => `${x.port}${x.process ? ` (${x.process})` : ""}`).join(", ")}; a Service given one of these ports will not be reachable on this node`);
    },
  },
  ...MODULES.map(moduleCheck),
  ...SYSCTLS.map(sysctlCheck),
  ...REQUIRED_BINARIES.map((b) => binaryCheck(b, "error")),
  ...OPTIONAL_BINARIES.map((b) => binaryCheck(b, "warning")),
  ...CONTROL_PLANE_FILES.map((f) => fileAvailable(f, CP)),
  ...NODE_FILES.map((f) => fileAvailable(f, ALL)),
  {
    id: `DirAvailable-${ETCD_DATA_DIR.replace(/\//g, "-")}`,
    roles: CP,
    severity: "error",
    title: `${ETCD_DATA_DIR} is empty`,
    evaluate(i) {
      const entries = lines(i.sections["etcd-dir"]);
      if (entries.length === 0) return pass(`${ETCD_DATA_DIR} is empty or absent`);
      const owner = initialisedFor(i.sections);
      if (owner === i.cluster.metadata.name) return pass(`${ETCD_DATA_DIR} holds this cluster's etcd data (${owner})`);
      return fail(`${ETCD_DATA_DIR} is not empty (${entries.join(", ")}): etcd data of ${owner ? `cluster ${owner}` : "another cluster"} would be reused; reset the host or move the directory away`);
    },
  },
];

/** Every check ID kubeprov knows (for --ignore-preflight-errors validation). */
export function knownCheckIds(): string[] {
  return CHECKS.map((c) => c.id);
}

/** The checks that apply to a host with these roles (a worker never gets control-plane checks). */
export function checksForRoles(roles: readonly Role[]): CheckDef[] {
  return CHECKS.filter((c) => c.roles.some((r) => roles.includes(r)));
}

/** Parse and validate --ignore-preflight-errors (kubeadm: comma separated, case-insensitive, "all"). Returns the unknown IDs too. */
export function parseIgnoreList(values: string[] | string | undefined): { ids: Set<string>; all: boolean; unknown: string[] } {
  const raw = (Array.isArray(values) ? values : values ? [values] : []).flatMap((v) => v.split(",")).map((v) => v.trim()).filter(Boolean);
  const known = new Map(knownCheckIds().map((id) => [id.toLowerCase(), id]));
  const ids = new Set<string>();
  const unknown: string[] = [];
  let all = false;
  for (const r of raw) {
    if (r.toLowerCase() === "all") all = true;
    else if (known.has(r.toLowerCase())) ids.add(known.get(r.toLowerCase())!);
    else unknown.push(r);
  }
  return { ids, all, unknown };
}

/** Evaluate every check for the host's roles; failures named in `ignore` become ignored warnings. */
export function evaluateChecks(input: PreflightInput, ignore: { ids: Set<string>; all: boolean } = { ids: new Set(), all: false }): CheckResultLine[] {
  return checksForRoles(input.roles).map((c) => {
    let e: Evaluation;
    try {
      e = c.evaluate(input);
    } catch (err) {
      e = fail(`check could not be evaluated: ${(err as Error).message}`);
    }
    if (e.status === "fail" && (ignore.all || ignore.ids.has(c.id))) return { id: c.id, status: "warn", message: e.message, ignored: true };
    return { id: c.id, ...e };
  });
}

/** criSocket in effect for a host: the host's, else the cluster's. */
export function criSocketOverride(cluster: Cluster, hostName: string): string | undefined {
  return cluster.spec.hosts.find((h) => h.name === hostName)?.criSocket ?? cluster.spec.containerRuntime.criSocket;
}

