// The docker driver: nodes are systemd containers on a per-cluster Docker network, reached over
// SSH like any other host. State lives on the machines: containers, volumes and the network are
// found by their io.kubeprov.cluster label, so `delete` works even when local files are gone.
import { rmSync, existsSync } from "node:fs";
import { execa } from "execa";
import { DOCKER_LABEL_CLUSTER, DOCKER_LABEL_NODE, DOCKER_LABEL_ROLE, KUBELET_CGROUP_PARENT } from "../../constants.js";
import { removeNodeCgroups } from "./cgroups.js";
import { HostError, RuntimeFailure } from "../../errors.js";
import type { Role } from "../../spec/schema.js";
import type { ClusterMachinesPlan, Driver, Machine, ProvisionResult } from "../driver.js";
import { sshBanner } from "../ssh.js";
import { withFileLock } from "../filelock.js";
import { cacheDir } from "../../paths.js";
import { join } from "node:path";
import { clusterFiles, ensureClusterKey, knownHostsLines, writeFileAtomic } from "../localfiles.js";
import { engineSocket } from "./api.js";
import { checkDaemon, docker, inspect, listIds } from "./cli.js";
import { ensureNodeImage } from "./nodeimage.js";
import {
  assignAddresses,
  containerdVolumeName,
  dockerRunArgs,
  freeSubnets,
  gatewayAddress,
  MAX_NODES,
  networkName,
  virtualIPAddress,
} from "./plan.js";

export interface DockerDriverOptions {
  /** Node image; default: ensureNodeImage() (built when missing). */
  image?: string;
  /** How long a node may take to reach systemd `running` and accept SSH. */
  bootTimeoutMs?: number;
  /** Progress lines. */
  log?: (message: string) => void;
}

interface ContainerInfo {
  id: string;
  name: string;
  node: string;
  roles: Role[];
  running: boolean;
  address?: string;
}

export class DockerDriver implements Driver {
  readonly name = "docker";
  private readonly log: (m: string) => void;
  constructor(private readonly opts: DockerDriverOptions = {}) {
    this.log = opts.log ?? (() => {});
  }

  async preflight(): Promise<void> {
    await checkDaemon();
  }

  // ---- reading what exists ---------------------------------------------------------------

  private async containers(cluster: string): Promise<ContainerInfo[]> {
    const ids = await listIds("containers", [`${DOCKER_LABEL_CLUSTER}=${cluster}`]);
    const net = networkName(cluster);
    const raw = await inspect("container", ids);
    return raw.map((c: any) => {
      const labels: Record<string, string> = c.Config?.Labels ?? {};
      const nets = c.NetworkSettings?.Networks ?? {};
      const configured = c.HostConfig && nets[net]?.IPAMConfig?.IPv4Address;
      return {
        id: c.Id,
        name: String(c.Name ?? "").replace(/^\//, ""),
        node: labels[DOCKER_LABEL_NODE] ?? String(c.Name ?? "").replace(/^\//, ""),
        roles: (labels[DOCKER_LABEL_ROLE] ?? "").split(",").filter(Boolean) as Role[],
        running: !!c.State?.Running,
        address: nets[net]?.IPAddress || configured || undefined,
      };
    });
  }

  private async network(cluster: string): Promise<{ subnet: string } | undefined> {
    const [n] = await inspect("network", [networkName(cluster)]);
    if (!n) return undefined;
    if (n.Labels?.[DOCKER_LABEL_CLUSTER] !== cluster) {
      throw new RuntimeFailure(`docker network ${networkName(cluster)} exists but was not made by kubeprov for cluster ${cluster} (no ${DOCKER_LABEL_CLUSTER} label); remove it or pick another name`);
    }
    const subnet = n.IPAM?.Config?.find((c: any) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(c.Subnet ?? ""))?.Subnet;
    if (!subnet) throw new RuntimeFailure(`docker network ${networkName(cluster)} has no IPv4 subnet`);
    return { subnet };
  }

  /** Subnets in use: every docker network's, and every route of the host (except the default route). */
  private async subnetsInUse(): Promise<string[]> {
    const ids = await listIds("networks");
    const nets = await inspect("network", ids);
    const used: string[] = [];
    for (const n of nets) for (const c of n.IPAM?.Config ?? []) if (c.Subnet) used.push(c.Subnet);
    const r = await execa("ip", ["-4", "-j", "route", "show", "table", "all"], { reject: false });
    if (r.exitCode === 0) {
      try {
        for (const route of JSON.parse(String(r.stdout)) as Array<{ dst: string }>) if (route.dst && route.dst !== "default") used.push(route.dst);
      } catch {
        /* no routes to add */
      }
    }
    return used;
  }

  /** The cluster network, created in the first free /24 of the pool; a lost race moves on to the next. */
  private async ensureNetwork(cluster: string): Promise<string> {
    const existing = await this.network(cluster);
    if (existing) return existing.subnet;
    // Docker lets two networks have the same name, and two `up`s could pick the same free /24:
    // kubeprov processes on this machine create networks one at a time.
    return withFileLock(join(cacheDir(), "locks", "docker-network.lock"), () => this.createNetwork(cluster));
  }

  private async createNetwork(cluster: string): Promise<string> {
    const existing = await this.network(cluster);
    if (existing) return existing.subnet;
    const candidates = freeSubnets(await this.subnetsInUse());
    for (const subnet of candidates.slice(0, 16)) {
      const r = await docker(
        [
          "network", "create",
          "--driver", "bridge",
          "--subnet", subnet,
          "--gateway", gatewayAddress(subnet),
          "--label", `${DOCKER_LABEL_CLUSTER}=${cluster}`,
          networkName(cluster),
        ],
        { reject: false },
      );
      if (r.exitCode === 0) {
        this.log(`network ${networkName(cluster)} ${subnet}`);
        return subnet;
      }
      if (/already exists/i.test(r.stderr)) {
        const now = await this.network(cluster);
        if (now) return now.subnet;
      }
      if (/overlap/i.test(r.stderr)) continue; // another `up` took this subnet a moment ago
      throw new RuntimeFailure(`docker network create ${networkName(cluster)} failed`, r.stderr.trim());
    }
    throw new RuntimeFailure(`no free /24 left for ${networkName(cluster)} inside 10.213.0.0/16`);
  }

  // ---- converging ----------------------------------------------------------------------------

  async provision(plan: ClusterMachinesPlan): Promise<ProvisionResult> {
    const { cluster } = plan;
    if (plan.machines.length > MAX_NODES) throw new RuntimeFailure(`at most ${MAX_NODES} nodes per cluster`);
    await this.preflight();
    const image = this.opts.image ?? (await ensureNodeImage({ log: this.log })).image;
    const publicKey = await ensureClusterKey(cluster);
    const subnet = await this.ensureNetwork(cluster);

    const existing = await this.containers(cluster);
    const byNode = new Map(existing.map((c) => [c.node, c]));
    const known = new Map<string, string>();
    for (const c of existing) if (c.address) known.set(c.node, c.address);
    const addresses = assignAddresses(subnet, plan.machines.map((m) => m.node), known);

    // Plan: what each node needs (create, start or nothing), then act on all nodes at once.
    let created = 0;
    let started = 0;
    const hostKeys = new Map<string, string[]>();
    await Promise.all(
      plan.machines.map(async (m) => {
        const have = byNode.get(m.node);
        const address = addresses.get(m.node)!;
        if (!have) {
          const volume = containerdVolumeName(m.node);
          const args = dockerRunArgs({ cluster, node: m.node, roles: m.roles, address, network: networkName(cluster), image, volume, cpus: m.cpus, memory: m.memory, shared: plan.sharedDirectories });
          const r = await docker(args, { reject: false });
          if (r.exitCode === 0) {
            created++;
            this.log(`created ${m.node} (${address})`);
          } else {
            // Another `up` of this cluster may have created it a moment ago: then it is ours to
            // wait for. A container of that name without this cluster's label is an error.
            let now: ContainerInfo | undefined;
            for (let i = 0; i < 50 && /already in use/i.test(r.stderr); i++) {
              // The name is reserved a moment before the container is listed.
              now = (await this.containers(cluster)).find((c) => c.node === m.node);
              if (now) break;
              await sleep(200);
            }
            if (!now)
              throw new HostError(m.node, "docker run", r.stderr.trim().split("\n").pop() ?? "docker run failed", r.stderr.trim());
            if (!now.running) await docker(["start", now.id]);
          }
        } else if (!have.running) {
          await docker(["start", have.id]);
          started++;
          this.log(`started ${m.node}`);
        }
        hostKeys.set(m.node, await this.bootAndAuthorize(m.node, address, publicKey));
      }),
    );

    const extra = existing.filter((c) => !plan.machines.some((m) => m.node === c.node)).map((c) => c.node);
    if (extra.length)
      this.log(`kept ${extra.join(", ")}: not in this plan (provisioning never removes machines; \`kubeprov node delete\` does)`);
    await this.writeKnownHosts(cluster, hostKeys);
    const machines = (await this.list(cluster)).filter((mm) => plan.machines.some((p) => p.node === mm.node));
    return {
      machines,
      subnet,
      virtualIP: plan.reserveVirtualIP ? virtualIPAddress(subnet) : undefined,
      created,
      started,
    };
  }

  /**
   * Waits until systemd says `running` (or `degraded`: the failed units are named) and sshd answers;
   * in the same docker exec, puts the cluster's public key into root's authorized_keys (through
   * stdin; rewritten only when different). Returns the node's SSH host public keys.
   */
  private async bootAndAuthorize(node: string, address: string, publicKey: string): Promise<string[]> {
    const deadline = Date.now() + (this.opts.bootTimeoutMs ?? 120_000);
    // --wait blocks until the boot transaction is done: one docker exec per node instead of a busy
    // poll (ten nodes polling every 200 ms slowed their own boot on two CPUs).
    const script =
      's=$(systemctl is-system-running --wait); echo "state=$s"; case "$s" in running|degraded) ;; *) exit 3;; esac; ' +
      'umask 077; mkdir -p /root/.ssh; k=$(cat); ' +
      'if ! { [ -f /root/.ssh/authorized_keys ] && grep -qxF "$k" /root/.ssh/authorized_keys; }; then ' +
      't=/root/.ssh/.authorized_keys.$$; printf "%s\\n" "$k" > $t && chmod 600 $t && mv $t /root/.ssh/authorized_keys || exit 1; fi; ' +
      'cat /etc/ssh/ssh_host_*_key.pub';
    let keys: string[];
    for (;;) {
      const left = Math.max(1000, deadline - Date.now());
      const r = await docker(["exec", "-i", node, "sh", "-c", script], { input: publicKey + "\n", reject: false, timeoutMs: left });
      const [first = "", ...rest] = r.stdout.split("\n");
      const state = first.startsWith("state=") ? first.slice("state=".length).trim() : "";
      if (r.exitCode === 0 && (state === "running" || state === "degraded")) {
        if (state === "degraded") {
          const failed = (await docker(["exec", node, "systemctl", "--failed", "--no-legend", "--plain"], { reject: false })).stdout
            .split("\n")
            .map((l) => l.trim().split(/\s+/)[0])
            .filter(Boolean);
          this.log(`${node}: systemd is degraded; failed units: ${failed.join(", ") || "(none listed)"}`);
        }
        keys = rest.filter((l) => l.trim());
        break;
      }
      if (/is not running|No such container/i.test(r.stderr)) {
        const logs = await docker(["logs", "--tail", "30", node], { reject: false });
        throw new HostError(node, "boot", "the node container stopped while booting", (logs.stdout + "\n" + logs.stderr).trim());
      }
      if (state && r.exitCode !== 3) throw new HostError(node, "boot", `could not authorize the cluster key (exit ${r.exitCode})`, r.stderr.trim());
      if (Date.now() > deadline) {
        const jobs = await docker(["exec", node, "systemctl", "list-jobs", "--no-pager"], { reject: false });
        throw new HostError(node, "boot", `systemd did not reach running in time (state: ${state || r.stderr.trim() || "unknown"})`, `pending systemd jobs:\n${jobs.stdout.trim()}`);
      }
      await sleep(200);
    }
    for (;;) {
      const banner = await sshBanner(address, 22, 2000);
      if (banner.startsWith("SSH-")) return keys;
      if (Date.now() > deadline) throw new HostError(node, "boot", `sshd does not answer on ${address}:22`);
      await sleep(200);
    }
  }

  /**
   * Rewrites the cluster's known_hosts from the nodes' own host keys, read through docker exec
   * (`known` holds the ones this run read already; other running nodes are read here).
   */
  private async writeKnownHosts(cluster: string, known: Map<string, string[]> = new Map()): Promise<void> {
    const containers = (await this.containers(cluster)).filter((c) => c.running && c.address);
    const entries = await Promise.all(
      containers.map(async (c) => {
        const keys = known.get(c.node) ?? (await docker(["exec", c.id, "sh", "-c", "cat /etc/ssh/ssh_host_*_key.pub"])).stdout.split("\n").filter((l) => l.trim());
        return { names: [c.address!, c.node], keys };
      }),
    );
    entries.sort((a, b) => a.names[1].localeCompare(b.names[1]));
    writeFileAtomic(clusterFiles(cluster).knownHostsFile, knownHostsLines(entries), 0o644);
  }

  // ---- Driver --------------------------------------------------------------------------------

  async list(cluster: string): Promise<Machine[]> {
    const files = clusterFiles(cluster);
    const cs = await this.containers(cluster);
    return cs
      .map(
        (c): Machine => ({
          node: c.node,
          machine: c.name,
          address: c.address ?? "",
          roles: c.roles,
          state: c.running ? "running" : "stopped",
          reach: { kind: "ssh", host: c.address ?? "", port: 22, user: "root", identityFile: files.identityFile, knownHostsFile: files.knownHostsFile },
        }),
      )
      .sort(nodeOrder);
  }

  async start(cluster: string, node?: string): Promise<void> {
    const cs = (await this.containers(cluster)).filter((c) => !node || c.node === node);
    await Promise.all(cs.filter((c) => !c.running).map((c) => docker(["start", c.id])));
    const publicKey = await ensureClusterKey(cluster);
    await Promise.all(cs.filter((c) => c.address).map((c) => this.bootAndAuthorize(c.name, c.address!, publicKey)));
  }

  async stop(cluster: string, node?: string): Promise<void> {
    const cs = (await this.containers(cluster)).filter((c) => !node || c.node === node);
    await Promise.all(cs.filter((c) => c.running).map((c) => docker(["stop", "--time", "30", c.id])));
  }

  async deleteMachine(cluster: string, node: string): Promise<void> {
    const c = (await this.containers(cluster)).find((x) => x.node === node);
    if (c) await docker(["rm", "--force", "--volumes", c.id]);
    await docker(["volume", "rm", "--force", containerdVolumeName(node)], { reject: false });
    if (engineSocket()) removeNodeCgroups(cluster, node);
    await this.writeKnownHosts(cluster);
  }

  async delete(cluster: string): Promise<{ removed: string[] }> {
    await this.preflight();
    const removed: string[] = [];
    const label = `${DOCKER_LABEL_CLUSTER}=${cluster}`;
    const cs = await this.containers(cluster);
    if (cs.length) {
      await docker(["rm", "--force", "--volumes", ...cs.map((c) => c.id)]);
      removed.push(...cs.map((c) => `container ${c.name}`));
    }
    // The pods' cgroups the nodes' kubelets made on this machine (a daemon elsewhere keeps its own).
    const cgroups = engineSocket() ? removeNodeCgroups(cluster) : 0;
    if (cgroups) removed.push(`${cgroups} cgroups under /sys/fs/cgroup/*/${KUBELET_CGROUP_PARENT}/${cluster}`);
    const vols = await listIds("volumes", [label]);
    if (vols.length) {
      await docker(["volume", "rm", "--force", ...vols]);
      removed.push(...vols.map((v) => `volume ${v}`));
    }
    const nets = await listIds("networks", [label]);
    if (nets.length) {
      const r = await docker(["network", "rm", ...nets], { reject: false });
      if (r.exitCode !== 0 && !/not found|No such network/i.test(r.stderr)) throw new RuntimeFailure(`docker network rm failed`, r.stderr.trim());
      removed.push(`network ${networkName(cluster)}`);
    }
    const dir = clusterFiles(cluster).dir;
    if (existsSync(dir)) {
      rmSync(dir, { recursive: true, force: true });
      removed.push(`directory ${dir}`);
    }
    return { removed };
  }
}

/** Control planes first, then workers, then external etcd hosts, each in numeric order (name, name2, name3, ... name10). */
export function nodeOrder(a: { node: string; roles: Role[] }, b: { node: string; roles: Role[] }): number {
  const cp = (m: { roles: Role[] }) => (m.roles.includes("control-plane") ? 0 : m.roles.includes("etcd") ? 2 : 1);
  if (cp(a) !== cp(b)) return cp(a) - cp(b);
  const num = (s: string) => {
    const m = /(\d+)$/.exec(s);
    return m ? Number(m[1]) : 1;
  };
  const stem = (s: string) => s.replace(/\d+$/, "");
  if (stem(a.node) !== stem(b.node)) return stem(a.node).localeCompare(stem(b.node));
  return num(a.node) - num(b.node);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
