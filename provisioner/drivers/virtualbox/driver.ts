// The virtualbox driver: VMs made with VBoxManage from a cloud image the user gives as an OVA (with
// cloud-init, its console on the first serial port, as Debian's and Ubuntu's cloud images have).
// The OVA is imported once per cluster as a base VM with a snapshot; each node is a linked clone of
// that snapshot with a NAT adapter and an adapter on the cluster's host-only interface, booted
// headless with a NoCloud seed ISO (the cluster's key for root, a static address). The host keys
// are read from the serial console log cloud-init writes them to, never from the first SSH
// connection. Everything is found again through VirtualBox itself (commands.ts says how).
import { existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { execa } from "execa";
import { ConfigError, HostError, RuntimeFailure, lastLines } from "../../errors.js";
import { cacheDir } from "../../paths.js";
import type { ClusterMachinesPlan, Driver, Machine, ProvisionResult } from "../driver.js";
import { assignAddresses, formatCidr, freeSubnets, gatewayAddress, parseCidr, virtualIPAddress, MAX_NODES } from "../docker/plan.js";
import { nodeOrder } from "../docker/driver.js";
import { withFileLock } from "../filelock.js";
import { clusterFiles, ensureClusterKey, writeFileAtomic } from "../localfiles.js";
import { sshBanner } from "../ssh.js";
import { HOST_ONLY_INTERFACE, hostKeysFromConsole, macAddress, seedImage, vboxMac } from "./cloudinit.js";
import {
  HOST_ONLY_POOL,
  acpiShutdownCommand,
  baseVmName,
  configureHostOnlyCommand,
  createHostOnlyCommand,
  createNodeCommands,
  deleteVmCommand,
  getExtraDataCommand,
  hostOnlyExtraDataKey,
  importBaseCommands,
  listHostOnlyCommand,
  listVmsCommand,
  parseCreatedHostOnly,
  parseExtraData,
  parseHostOnlyList,
  parseMachineReadable,
  parseNodeDescription,
  parseVmList,
  powerOffCommand,
  prefixLength,
  removeHostOnlyCommand,
  setExtraDataCommand,
  showVmInfoCommand,
  startVmCommand,
  versionCommand,
  vmGroup,
  vmRunning,
} from "./commands.js";
import { knownHostNames, rewriteKnownHosts } from "./knownhosts.js";

/** The VBoxManage program: the driver option, else $KUBEPROV_VBOXMANAGE, else VBoxManage on PATH. */
export function vboxManagePath(option?: string): string {
  return option ?? process.env.KUBEPROV_VBOXMANAGE ?? "VBoxManage";
}

export interface VirtualBoxOptions {
  log?: (message: string) => void;
  /** The OVA to import as the base image (needed only when a VM must be created). */
  image?: string;
  /** VBoxManage to run (see vboxManagePath). */
  vboxmanage?: string;
  /** How long a new VM may take to print its host keys on the console and answer on port 22. */
  bootTimeoutMs?: number;
  /** How long `stop` waits for the guest to shut down after the ACPI power button before powering off. */
  stopTimeoutMs?: number;
  /** Polling interval while waiting. */
  pollMs?: number;
  /** Waits until the node's sshd answers (default: its SSH banner on address:22). */
  waitForSsh?: (node: string, address: string, deadline: number) => Promise<void>;
}

interface VmInfo {
  name: string;
  running: boolean;
  node?: { node: string; roles: Machine["roles"]; address: string };
  base: boolean;
}

/** Files of a cluster's VMs: the VMs themselves (basefolder), and each node's seed ISO and console log. */
export function vmFiles(cluster: string, node?: string): { dir: string; seedIso: string; consoleLog: string } {
  const dir = join(clusterFiles(cluster).dir, "virtualbox");
  return { dir, seedIso: join(dir, `${node}-seed.iso`), consoleLog: join(dir, `${node}-console.log`) };
}

export class VirtualBoxDriver implements Driver {
  readonly name = "virtualbox";
  private readonly log: (m: string) => void;
  private readonly program: string;
  constructor(private readonly opts: VirtualBoxOptions = {}) {
    this.log = opts.log ?? (() => {});
    this.program = vboxManagePath(opts.vboxmanage);
  }

  /** Runs VBoxManage; a failure names the command (never secrets: none is ever an argument) and VBoxManage's error. */
  private async vbox(args: string[], opts: { reject?: boolean } = {}): Promise<{ stdout: string; stderr: string; exitCode: number }> {
    const r = await execa(this.program, args, { reject: false });
    if ((r as { code?: string }).code === "ENOENT")
      throw new RuntimeFailure(`VirtualBox is not installed (${this.program} not found); the virtualbox driver needs VirtualBox 6.1 or 7 with hardware virtualization; or use --driver docker`);
    const out = { stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? ""), exitCode: r.exitCode ?? 1 };
    if (out.exitCode !== 0 && opts.reject !== false) throw new RuntimeFailure(`VBoxManage ${args.join(" ")} failed (exit ${out.exitCode})`, lastLines(out.stderr.trim() || out.stdout.trim(), 10));
    return out;
  }

  async preflight(): Promise<void> {
    await this.vbox(versionCommand());
  }

  // ---- reading what exists ---------------------------------------------------------------------

  /** The cluster's VMs (nodes and base), from `list vms` and each candidate's showvminfo. */
  private async vms(cluster: string): Promise<VmInfo[]> {
    const candidates = parseVmList((await this.vbox(listVmsCommand())).stdout).filter((v) => v.name.startsWith(`${cluster}-`));
    const out: VmInfo[] = [];
    for (const c of candidates) {
      const r = await this.vbox(showVmInfoCommand(c.uuid), { reject: false });
      if (r.exitCode !== 0) continue; // unregistered a moment ago
      const info = parseMachineReadable(r.stdout);
      if (!(info.get("groups") ?? "").split(",").includes(vmGroup(cluster))) continue;
      const d = parseNodeDescription(info.get("description") ?? "");
      const base = c.name === baseVmName(cluster);
      if (!base && d?.cluster !== cluster) continue;
      out.push({ name: c.name, running: vmRunning(info), node: d && { node: d.node, roles: d.roles, address: d.address }, base });
    }
    return out;
  }

  private async hostOnly(cluster: string): Promise<{ name: string; subnet: string; prefix: number } | undefined> {
    const name = parseExtraData((await this.vbox(getExtraDataCommand(hostOnlyExtraDataKey(cluster)))).stdout);
    if (!name) return undefined;
    const itf = parseHostOnlyList((await this.vbox(listHostOnlyCommand())).stdout).find((i) => i.name === name);
    if (!itf?.ip) return undefined;
    const prefix = prefixLength(itf.netmask);
    return { name, subnet: formatCidr(parseCidr(`${itf.ip}/${prefix}`)!), prefix };
  }

  /**
   * The cluster's host-only interface (`hostonlyif create`, then `ipconfig` with the host's
   * address .1 of the first free /24 of 192.168.56.0/21), named in VirtualBox's global extra data.
   * `hostonlyif` is chosen over 7.x's `hostonlynet` because it exists on VirtualBox 6.1 and 7 on
   * Linux and Windows hosts and gives the host an address on the network (kubeprov reaches the
   * nodes directly); on macOS with VirtualBox 7 only hostonlynet exists, which this driver does not use.
   */
  private async ensureHostOnly(cluster: string): Promise<{ name: string; subnet: string; prefix: number }> {
    const have = await this.hostOnly(cluster);
    if (have) return have;
    return withFileLock(join(cacheDir(), "locks", "virtualbox-network.lock"), async () => {
      const again = await this.hostOnly(cluster);
      if (again) return again;
      const inUse = parseHostOnlyList((await this.vbox(listHostOnlyCommand())).stdout)
        .filter((i) => i.ip && i.netmask)
        .map((i) => `${i.ip}/${prefixLength(i.netmask)}`);
      const subnet = freeSubnets([...inUse, ...(await hostRoutes())], HOST_ONLY_POOL)[0];
      if (!subnet) throw new RuntimeFailure(`no free /24 left for a host-only network inside ${HOST_ONLY_POOL}`);
      const created = await this.vbox(createHostOnlyCommand());
      const name = parseCreatedHostOnly(created.stdout + created.stderr);
      if (!name) throw new RuntimeFailure("VBoxManage hostonlyif create did not name the interface it made", lastLines(created.stdout, 5));
      await this.vbox(configureHostOnlyCommand(name, gatewayAddress(subnet), "255.255.255.0"));
      await this.vbox(setExtraDataCommand(hostOnlyExtraDataKey(cluster), name));
      this.log(`host-only interface ${name} ${subnet} (host ${gatewayAddress(subnet)})`);
      return { name, subnet, prefix: 24 };
    });
  }

  // ---- converging ------------------------------------------------------------------------------

  async provision(plan: ClusterMachinesPlan): Promise<ProvisionResult> {
    const { cluster } = plan;
    if (plan.machines.length > MAX_NODES) throw new RuntimeFailure(`at most ${MAX_NODES} nodes per cluster`);
    await this.preflight();
    const existing = await this.vms(cluster);
    const byNode = new Map(existing.filter((v) => v.node).map((v) => [v.node!.node, v]));
    const missing = plan.machines.filter((m) => !byNode.has(m.node));
    if (missing.length && !existing.some((v) => v.base)) await this.importBase(cluster);
    const publicKey = await ensureClusterKey(cluster);
    const net = await this.ensureHostOnly(cluster);
    const existingAddresses = new Map([...byNode].map(([n, v]) => [n, v.node!.address] as const));
    const addresses = assignAddresses(net.subnet, plan.machines.map((m) => m.node), existingAddresses);
    mkdirSync(vmFiles(cluster).dir, { recursive: true, mode: 0o700 });

    // Created one at a time: clones of one snapshot lock the base VM while they are made.
    let created = 0;
    let started = 0;
    const fresh: string[] = [];
    for (const m of plan.machines) {
      const have = byNode.get(m.node);
      const address = addresses.get(m.node)!;
      if (!have) {
        const f = vmFiles(cluster, m.node);
        const natMac = macAddress(cluster, m.node, 1);
        const hostOnlyMac = macAddress(cluster, m.node, 2);
        writeFileAtomic(f.seedIso, seedImage({ cluster, node: m.node, publicKey, address, prefixLength: net.prefix, natMac, hostOnlyMac }), 0o600);
        rmSync(f.consoleLog, { force: true }); // keys are read from this boot's console only
        for (const cmd of createNodeCommands({
          cluster,
          node: m.node,
          roles: m.roles,
          address,
          cpus: Math.max(1, Math.round(m.cpus ?? 2)),
          memoryMB: Math.round((m.memory ?? 2 * 1024 ** 3) / 1024 ** 2),
          hostOnlyInterface: net.name,
          natMac: vboxMac(natMac),
          hostOnlyMac: vboxMac(hostOnlyMac),
          seedIso: f.seedIso,
          consoleLog: f.consoleLog,
          baseFolder: vmFiles(cluster).dir,
        }))
          await this.vbox(cmd);
        await this.vbox(startVmCommand(m.node));
        fresh.push(m.node);
        created++;
        this.log(`created ${m.node} (${address})`);
      } else if (!have.running) {
        await this.vbox(startVmCommand(m.node));
        started++;
        this.log(`started ${m.node}`);
      }
    }

    // New VMs, and any VM whose keys a failed run never recorded (its console log may still show them).
    const known = knownHostNames(clusterFiles(cluster).knownHostsFile);
    const unrecorded = plan.machines.map((m) => m.node).filter((n) => fresh.includes(n) || !known.has(addresses.get(n)!));
    const deadline = Date.now() + (this.opts.bootTimeoutMs ?? 300_000);
    const keys = new Map<string, string[]>();
    await Promise.all(
      unrecorded.map(async (node) => {
        keys.set(node, await this.waitForHostKeys(cluster, node, deadline));
      }),
    );
    await this.recordKeys(cluster, [...keys].map(([node, k]) => ({ node, address: addresses.get(node)!, keys: k })));
    await Promise.all(plan.machines.map((m) => this.waitSsh(m.node, addresses.get(m.node)!, deadline)));

    const extra = [...byNode.keys()].filter((n) => !plan.machines.some((m) => m.node === n));
    if (extra.length) this.log(`kept ${extra.join(", ")}: not in this plan (provisioning never removes machines; \`kubeprov node delete\` does)`);
    const machines = (await this.list(cluster)).filter((mm) => plan.machines.some((p) => p.node === mm.node));
    return { machines, subnet: net.subnet, virtualIP: plan.reserveVirtualIP ? virtualIPAddress(net.subnet) : undefined, interface: HOST_ONLY_INTERFACE, created, started };
  }

  private async importBase(cluster: string): Promise<void> {
    const image = this.opts.image;
    if (!image) throw new ConfigError("the virtualbox driver needs a cloud image to create VMs: give --vbox-image FILE.ova (an OVA of a cloud image with cloud-init)");
    const path = resolve(image);
    if (!existsSync(path) || !statSync(path).isFile()) throw new ConfigError(`--vbox-image ${image}: no such file`);
    this.log(`importing ${path} as ${baseVmName(cluster)}`);
    mkdirSync(vmFiles(cluster).dir, { recursive: true, mode: 0o700 });
    for (const cmd of importBaseCommands(cluster, path, vmFiles(cluster).dir)) await this.vbox(cmd);
  }

  /** The host keys cloud-init printed on the node's serial console during this boot. */
  private async waitForHostKeys(cluster: string, node: string, deadline: number): Promise<string[]> {
    const log = vmFiles(cluster, node).consoleLog;
    for (;;) {
      const text = existsSync(log) ? readFileSync(log, "latin1") : "";
      const keys = hostKeysFromConsole(text);
      if (keys?.length) return keys;
      if (Date.now() > deadline)
        throw new HostError(
          node,
          "boot",
          `no SSH host keys on the serial console (${log}) in time: is cloud-init in the image, with its console on ttyS0? (cloud-init prints them at a VM's first boot only: a VM restarted before they were recorded must be made again, \`kubeprov node delete\` then \`kubeprov up\`)`,
          lastLines(text.trim(), 20),
        );
      await sleep(this.opts.pollMs ?? 1000);
    }
  }

  private async waitSsh(node: string, address: string, deadline: number): Promise<void> {
    if (this.opts.waitForSsh) return this.opts.waitForSsh(node, address, deadline);
    for (;;) {
      if ((await sshBanner(address, 22, 2000)).startsWith("SSH-")) return;
      if (Date.now() > deadline) throw new HostError(node, "boot", `sshd does not answer on ${address}:22`);
      await sleep(this.opts.pollMs ?? 1000);
    }
  }

  /** known_hosts: these nodes' entries replaced by the keys read from their consoles; other nodes' entries kept. */
  private async recordKeys(cluster: string, entries: Array<{ node: string; address: string; keys: string[] }>, removed: string[] = []): Promise<void> {
    const file = clusterFiles(cluster).knownHostsFile;
    if (!entries.length && !removed.length) return;
    const vms = removed.length ? await this.vms(cluster) : [];
    const gone = removed.flatMap((n) => [n, ...vms.filter((v) => v.node?.node === n).map((v) => v.node!.address)]);
    rewriteKnownHosts(file, entries.map((e) => ({ names: [e.address, e.node], keys: e.keys })), gone);
  }

  // ---- Driver ----------------------------------------------------------------------------------

  async list(cluster: string): Promise<Machine[]> {
    const files = clusterFiles(cluster);
    return (await this.vms(cluster))
      .filter((v) => v.node)
      .map(
        (v): Machine => ({
          node: v.node!.node,
          machine: v.name,
          address: v.node!.address,
          roles: v.node!.roles,
          state: v.running ? "running" : "stopped",
          reach: { kind: "ssh", host: v.node!.address, port: 22, user: "root", identityFile: files.identityFile, knownHostsFile: files.knownHostsFile },
        }),
      )
      .sort(nodeOrder);
  }

  async start(cluster: string, node?: string): Promise<void> {
    const ms = (await this.list(cluster)).filter((m) => !node || m.node === node);
    for (const m of ms.filter((x) => x.state !== "running")) await this.vbox(startVmCommand(m.machine));
    const deadline = Date.now() + (this.opts.bootTimeoutMs ?? 300_000);
    await Promise.all(ms.map((m) => this.waitSsh(m.node, m.address, deadline)));
  }

  /** ACPI power button for every running VM, then poweroff for those still running after the time-out. */
  async stop(cluster: string, node?: string): Promise<void> {
    const running = (await this.list(cluster)).filter((m) => (!node || m.node === node) && m.state === "running");
    for (const m of running) await this.vbox(acpiShutdownCommand(m.machine));
    const deadline = Date.now() + (this.opts.stopTimeoutMs ?? 60_000);
    let left = running;
    while (left.length) {
      const now = new Map((await this.list(cluster)).map((m) => [m.node, m.state]));
      left = left.filter((m) => now.get(m.node) === "running");
      if (!left.length || Date.now() > deadline) break;
      await sleep(this.opts.pollMs ?? 1000);
    }
    for (const m of left) {
      this.log(`${m.node}: still running ${Math.round((this.opts.stopTimeoutMs ?? 60_000) / 1000)} s after the ACPI power button: powering off`);
      await this.vbox(powerOffCommand(m.machine), { reject: false });
    }
  }

  private async removeVm(cluster: string, vm: VmInfo): Promise<void> {
    if (vm.running) await this.vbox(powerOffCommand(vm.name), { reject: false });
    await this.vbox(deleteVmCommand(vm.name));
    if (vm.node) {
      const f = vmFiles(cluster, vm.node.node);
      rmSync(f.seedIso, { force: true });
      rmSync(f.consoleLog, { force: true });
    }
  }

  async deleteMachine(cluster: string, node: string): Promise<void> {
    const vm = (await this.vms(cluster)).find((v) => v.node?.node === node);
    if (!vm) return;
    await this.recordKeys(cluster, [], [node]);
    await this.removeVm(cluster, vm);
  }

  async delete(cluster: string): Promise<{ removed: string[] }> {
    await this.preflight();
    const removed: string[] = [];
    const vms = await this.vms(cluster);
    // Linked clones first: the base VM's snapshot holds their parent disk.
    for (const vm of [...vms.filter((v) => !v.base), ...vms.filter((v) => v.base)]) {
      await this.removeVm(cluster, vm);
      removed.push(`vm ${vm.name}`);
    }
    const net = parseExtraData((await this.vbox(getExtraDataCommand(hostOnlyExtraDataKey(cluster)))).stdout);
    if (net) {
      const r = await this.vbox(removeHostOnlyCommand(net), { reject: false });
      if (r.exitCode !== 0 && parseHostOnlyList((await this.vbox(listHostOnlyCommand())).stdout).some((i) => i.name === net))
        throw new RuntimeFailure(`VBoxManage hostonlyif remove ${net} failed`, lastLines(r.stderr.trim(), 10));
      await this.vbox(setExtraDataCommand(hostOnlyExtraDataKey(cluster)));
      removed.push(`host-only interface ${net}`);
    }
    const dir = clusterFiles(cluster).dir;
    if (existsSync(dir)) {
      rmSync(dir, { recursive: true, force: true });
      removed.push(`directory ${dir}`);
    }
    return { removed };
  }
}

/** Destinations of the host's IPv4 routes (so a host-only subnet never shadows a network the host uses); empty where `ip` is missing. */
async function hostRoutes(): Promise<string[]> {
  const r = await execa("ip", ["-4", "-j", "route", "show", "table", "all"], { reject: false });
  if (r.exitCode !== 0) return [];
  try {
    return (JSON.parse(String(r.stdout)) as Array<{ dst: string }>).map((x) => x.dst).filter((d) => d && d !== "default");
  } catch {
    return [];
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

