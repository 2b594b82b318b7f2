// The none driver (minikube's `--driver=none`): the one machine is the machine kubeprov runs on,
// reached with the local transport (no SSH). It creates and deletes no machine: the node is named
// after this machine's hostname and addressed at the address of the default route's interface
// (or --address). stop/start stop and start the kubelet and the containers it runs, as minikube's
// none driver does; a cluster of it has one node, so nodes are neither added nor deleted.
import { existsSync, readFileSync, rmSync } from "node:fs";
import { hostname, networkInterfaces, type NetworkInterfaceInfo } from "node:os";
import { HostError, UsageError } from "../errors.js";
import { LocalTransport } from "../transport/local.js";
import { parseClusterText } from "../spec/load.js";
import type { ClusterMachinesPlan, Driver, Machine, ProvisionResult } from "./driver.js";
import { clusterFiles } from "./localfiles.js";
import { DNS1123_LABEL } from "../constants.js";

export interface NoneDriverOptions {
  /** The node's address; default: the address of the default route's interface. */
  address?: string;
  log?: (message: string) => void;
}


/** What the warning says before `up --driver none` changes this machine. */
export function noneDriverWarning(node: string): string {
  return (
    `the none driver installs Kubernetes on this machine (${node}) itself, not in a VM or container: ` +
    "it configures and restarts containerd, writes kubelet and control-plane files under /etc/kubernetes, " +
    "/var/lib/kubelet and /var/lib/etcd, runs pods as root and adds iptables rules; " +
    "`kubeprov delete` resets this machine. Use it only on a machine meant for it"
  );
}

/** This machine's node name: its hostname, which must be a DNS-1123 label (lowercased, as the kubelet does). */
export function thisNodeName(name: string = hostname()): string {
  const node = name.toLowerCase();
  if (!DNS1123_LABEL.test(node))
    throw new UsageError(`this machine's hostname ${JSON.stringify(name)} is not a DNS-1123 label, and the none driver names the node after it: set a hostname of lowercase letters, digits and '-' (hostnamectl set-hostname NAME)`);
  return node;
}

/** The interface of the IPv4 default route in /proc/net/route's text (undefined when there is none). */
export function defaultRouteInterface(procNetRoute: string): string | undefined {
  for (const line of procNetRoute.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    // Iface Destination Gateway Flags RefCnt Use Metric Mask ...; Flags bit 0x1 is RTF_UP.
    if (f.length >= 8 && f[1] === "00000000" && f[7] === "00000000" && (parseInt(f[3], 16) & 1) === 1) return f[0];
  }
  return undefined;
}

/** The node's address: the first IPv4 address of the default route's interface; a usage error saying which flag (`flag`) to pass otherwise. */
export function defaultRouteAddress(procNetRoute: string, interfaces: NodeJS.Dict<NetworkInterfaceInfo[]>, flag = "--address"): string {
  const iface = defaultRouteInterface(procNetRoute);
  if (!iface) throw new UsageError(`this machine has no IPv4 default route, so the node's address is unknown: pass ${flag} ADDRESS (the IP this machine is reached at)`);
  const v4 = (interfaces[iface] ?? []).find((a) => a.family === "IPv4" && !a.internal);
  if (!v4) throw new UsageError(`the default route's interface ${iface} has no IPv4 address: pass ${flag} ADDRESS (the IP this machine is reached at)`);
  return v4.address;
}

/** This machine's address: its default route's interface's (defaultRouteAddress); `flag` is the option the error tells the user to pass instead. */
export function thisMachineAddress(flag = "--address"): string {
  const route = existsSync("/proc/net/route") ? readFileSync("/proc/net/route", "utf8") : "";
  return defaultRouteAddress(route, networkInterfaces(), flag);
}

/** Whether this machine is a container (the same signs as the facts script: docker's marker file, systemd's, PID 1's environment). */
function inContainer(): boolean {
  if (existsSync("/.dockerenv") || existsSync("/run/systemd/container")) return true;
  try {
    return readFileSync("/proc/1/environ", "latin1").split("\0").some((e) => e.startsWith("container="));
  } catch {
    return false;
  }
}

function pid1(): string {
  try {
    return readFileSync("/proc/1/comm", "utf8").trim();
  } catch {
    return "";
  }
}

export class NoneDriver implements Driver {
  readonly name = "none";
  private readonly log: (m: string) => void;
  constructor(private readonly opts: NoneDriverOptions = {}) {
    this.log = opts.log ?? (() => {});
  }

  /** Linux with systemd as init: the kubelet and containerd run as systemd units, as on any host kubeprov prepares. */
  async preflight(): Promise<void> {
    if (process.platform !== "linux") throw new UsageError(`the none driver runs Kubernetes on this machine, which must be Linux (this is ${process.platform})`);
    const init = pid1();
    if (init !== "systemd") throw new UsageError(`the none driver needs systemd as this machine's init (PID 1 is ${JSON.stringify(init)}): the kubelet runs as a systemd unit`);
  }

  /** This machine as the one node. */
  private machine(roles: Machine["roles"], node: string, address: string, state: Machine["state"]): Machine {
    return { node, machine: node, address, roles, state, reach: { kind: "local" } };
  }

  private address(): string {
    if (this.opts.address !== undefined) return this.opts.address;
    return thisMachineAddress();
  }

  async provision(plan: ClusterMachinesPlan): Promise<ProvisionResult> {
    if (plan.machines.length !== 1) throw new UsageError(`the none driver has one machine, this one (asked for ${plan.machines.length})`);
    const node = thisNodeName();
    if (plan.machines[0].node !== node) throw new UsageError(`the none driver's node is this machine, ${node} (the plan names ${plan.machines[0].node})`);
    const address = this.address();
    // Node containers share cgroups with their host and run cgroupfs (DESIGN); a real host's
    // systemd owns its cgroups, and containerd and the kubelet should go through it.
    const cgroupDriver = inContainer() ? "cgroupfs" : "systemd";
    this.log(`none driver: node ${node} at ${address} (this machine), cgroup driver ${cgroupDriver}`);
    return { machines: [this.machine([...plan.machines[0].roles], node, address, "running")], subnet: "", cgroupDriver, created: 0, started: 0 };
  }

  /** The cluster's node from its cluster file; running while the kubelet is active (minikube's none driver's state). */
  async list(cluster: string): Promise<Machine[]> {
    const file = clusterFiles(cluster).clusterFile;
    if (!existsSync(file)) return [];
    const hosts = parseClusterText(readFileSync(file, "utf8"), file).spec.hosts.filter((h) => h.connection === "local");
    if (!hosts.length) return [];
    const r = await new LocalTransport(hosts[0].name).exec("systemctl is-active --quiet kubelet", { check: false });
    return hosts.map((h) => this.machine([...h.roles], h.name, h.internalAddress ?? h.address, r.code === 0 ? "running" : "stopped"));
  }

  /** containerd and the kubelet started; the kubelet starts the static pods and the node's pods again. */
  async start(cluster: string): Promise<void> {
    const t = new LocalTransport(thisNodeName());
    const r = await t.exec("systemctl start containerd kubelet", { sudo: true, check: false, timeoutMs: 120_000 });
    if (r.code !== 0) throw new HostError(t.host, "none driver start", `systemctl start containerd kubelet failed (cluster ${cluster})`, (r.stderr || r.stdout).trim());
  }

  /** The kubelet stopped, then every container it ran (containerd stays up, as minikube's none driver leaves the runtime). */
  async stop(cluster: string): Promise<void> {
    const t = new LocalTransport(thisNodeName());
    const r = await t.exec(
      // No crictl yet (the cluster never got past prepare): no container of the kubelet's either.
      "systemctl stop kubelet && { command -v crictl >/dev/null || exit 0; } && ids=$(crictl ps -q) && { [ -z \"$ids\" ] || crictl stop --timeout 10 $ids >/dev/null; }",
      { sudo: true, check: false, timeoutMs: 180_000 },
    );
    if (r.code !== 0) throw new HostError(t.host, "none driver stop", `stopping the kubelet and the containers of cluster ${cluster} failed`, (r.stderr || r.stdout).trim());
  }

  async deleteMachine(cluster: string, node: string): Promise<void> {
    throw new UsageError(`cluster ${cluster} runs on the none driver: its one node is this machine (${node}); \`kubeprov delete --name ${cluster}\` resets it`);
  }

  /** The cluster's local files (the caller resets this machine first: the driver knows nothing of Kubernetes). */
  async delete(cluster: string): Promise<{ removed: string[] }> {
    const dir = clusterFiles(cluster).dir;
    if (!existsSync(dir)) return { removed: [] };
    rmSync(dir, { recursive: true, force: true });
    return { removed: [`local files ${dir}`] };
  }
}
