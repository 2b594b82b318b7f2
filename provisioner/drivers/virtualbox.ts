// The virtualbox driver: VMs made with VBoxManage from a base disk image (a Debian cloud image
// converted to VDI, with the cluster's key authorized by cloud-init or baked in). VirtualBox cannot
// run on the machine this project is developed on (no VT-x in the sandbox, no vboxdrv), so this
// driver is exercised through its commands, which are plain data (argv arrays) unit-tested in
// test/unit/virtualbox.test.ts; provision() refuses clearly when VBoxManage is missing.
import { execa } from "execa";
import { DOCKER_LABEL_CLUSTER } from "../constants.js";
import { RuntimeFailure, lastLines } from "../errors.js";
import type { Role } from "../spec/schema.js";
import type { ClusterMachinesPlan, Driver, Machine, ProvisionResult } from "./driver.js";
import { clusterFiles } from "./localfiles.js";

export const VBOXMANAGE = "VBoxManage";
/** VM group of a cluster: how its VMs are found again (VirtualBox's equivalent of a label). */
export function vmGroup(cluster: string): string {
  return `/kubeprov/${cluster}`;
}
/** Host-only network for the cluster (one per cluster, named after it). */
export function hostOnlyNetwork(cluster: string): string {
  return `kubeprov-${cluster}`;
}

export interface VmSpec {
  cluster: string;
  name: string;
  roles: Role[];
  cpus: number;
  memoryMB: number;
  /** Base disk (VDI) cloned for the VM. */
  baseDisk: string;
  /** Where the VM's files live. */
  baseFolder: string;
}

/** The VBoxManage calls that create and configure one VM, in order. Pure. */
export function createVmCommands(vm: VmSpec): string[][] {
  const disk = `${vm.baseFolder}/${vm.name}/${vm.name}.vdi`;
  return [
    ["createvm", "--name", vm.name, "--groups", vmGroup(vm.cluster), "--ostype", "Debian_64", "--basefolder", vm.baseFolder, "--register"],
    [
      "modifyvm", vm.name,
      "--cpus", String(vm.cpus),
      "--memory", String(vm.memoryMB),
      "--nic1", "nat",
      "--nic2", "hostonlynet", "--host-only-net2", hostOnlyNetwork(vm.cluster),
      "--audio", "none",
      "--boot1", "disk",
      "--description", `${DOCKER_LABEL_CLUSTER}=${vm.cluster} roles=${vm.roles.join(",")}`,
    ],
    ["clonemedium", "disk", vm.baseDisk, disk, "--format", "VDI"],
    ["storagectl", vm.name, "--name", "SATA", "--add", "sata", "--controller", "IntelAhci", "--portcount", "1"],
    ["storageattach", vm.name, "--storagectl", "SATA", "--port", "0", "--device", "0", "--type", "hdd", "--medium", disk],
    ["guestproperty", "set", vm.name, "/kubeprov/cluster", vm.cluster],
    ["guestproperty", "set", vm.name, "/kubeprov/roles", vm.roles.join(",")],
  ];
}

/** Host-only network of the cluster (VirtualBox 7 "hostonlynet"), with its DHCP range. */
export function createNetworkCommand(cluster: string, lower: string, upper: string, mask = "255.255.255.0"): string[] {
  return ["hostonlynet", "add", "--name", hostOnlyNetwork(cluster), "--netmask", mask, "--lower-ip", lower, "--upper-ip", upper, "--enable"];
}

export function startVmCommand(name: string): string[] {
  return ["startvm", name, "--type", "headless"];
}
/** ACPI shutdown (the guest's systemd halts cleanly); poweroff is the fallback after a time-out. */
export function stopVmCommand(name: string, force = false): string[] {
  return ["controlvm", name, force ? "poweroff" : "acpipowerbutton"];
}
export function deleteVmCommand(name: string): string[] {
  return ["unregistervm", name, "--delete"];
}
export function deleteNetworkCommand(cluster: string): string[] {
  return ["hostonlynet", "remove", "--name", hostOnlyNetwork(cluster)];
}
/** The guest additions publish the address of the second NIC (host-only) here. */
export function addressQuery(name: string): string[] {
  return ["guestproperty", "get", name, "/VirtualBox/GuestInfo/Net/1/V4/IP"];
}
export function listVmsCommand(): string[] {
  return ["list", "--long", "vms"];
}

/** Parses `VBoxManage list --long vms` into (name, group, state). Pure. */
export function parseVmList(text: string): Array<{ name: string; groups: string[]; state: "running" | "stopped" }> {
  const out: Array<{ name: string; groups: string[]; state: "running" | "stopped" }> = [];
  let cur: { name: string; groups: string[]; state: "running" | "stopped" } | undefined;
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z ]+):\s+(.*)$/.exec(line);
    if (!m) continue;
    const [, key, value] = m;
    if (key === "Name" && !line.startsWith(" ")) {
      cur = { name: value.trim(), groups: [], state: "stopped" };
      out.push(cur);
    } else if (cur && key === "Groups") cur.groups = value.split(",").map((g) => g.trim());
    else if (cur && key === "State") cur.state = /^running/.test(value) ? "running" : "stopped";
  }
  return out;
}

/** "Value: 192.168.56.3" → "192.168.56.3"; "No value set!" → undefined. */
export function parseAddress(text: string): string | undefined {
  const m = /^Value:\s*(\d+\.\d+\.\d+\.\d+)/m.exec(text);
  return m?.[1];
}

export interface VirtualBoxOptions {
  log?: (m: string) => void;
  /** Base disk (VDI) with Debian, sshd and the cluster key; required to create VMs. */
  baseDisk?: string;
  baseFolder?: string;
}

export class VirtualBoxDriver implements Driver {
  readonly name = "virtualbox";
  constructor(private readonly opts: VirtualBoxOptions = {}) {}

  private async vbox(args: string[], reject = true): Promise<string> {
    const r = await execa(VBOXMANAGE, args, { reject: false });
    if ((r as { code?: string }).code === "ENOENT") {
      throw new RuntimeFailure("VirtualBox is not installed (VBoxManage not found); the virtualbox driver needs VirtualBox 7 with hardware virtualization, which this machine does not have; use --driver docker");
    }
    if (r.exitCode !== 0 && reject) throw new RuntimeFailure(`VBoxManage ${args.join(" ")} failed`, lastLines(String(r.stderr), 10));
    return String(r.stdout);
  }

  async preflight(): Promise<void> {
    await this.vbox(["--version"]);
  }

  async provision(plan: ClusterMachinesPlan): Promise<ProvisionResult> {
    await this.preflight();
    if (!this.opts.baseDisk) throw new RuntimeFailure("the virtualbox driver needs a base disk image (VDI with Debian and sshd); none is configured");
    const existing = await this.list(plan.cluster);
    let created = 0;
    let started = 0;
    for (const m of plan.machines) {
      const have = existing.find((e) => e.node === m.node);
      if (!have) {
        for (const cmd of createVmCommands({
          cluster: plan.cluster,
          name: m.node,
          roles: m.roles,
          cpus: m.cpus ?? 2,
          memoryMB: Math.round((m.memory ?? 2 * 1024 ** 3) / 1024 ** 2),
          baseDisk: this.opts.baseDisk,
          baseFolder: this.opts.baseFolder ?? `${clusterFiles(plan.cluster).dir}/vms`,
        }))
          await this.vbox(cmd);
        created++;
      }
      if (!have || have.state !== "running") {
        await this.vbox(startVmCommand(m.node));
        if (have) started++;
      }
    }
    return { machines: await this.list(plan.cluster), subnet: "", created, started };
  }

  async list(cluster: string): Promise<Machine[]> {
    const files = clusterFiles(cluster);
    const vms = parseVmList(await this.vbox(listVmsCommand())).filter((v) => v.groups.includes(vmGroup(cluster)));
    return Promise.all(
      vms.map(async (v): Promise<Machine> => {
        const address = parseAddress(await this.vbox(addressQuery(v.name), false)) ?? "";
        const roles = (await this.vbox(["guestproperty", "get", v.name, "/kubeprov/roles"], false)).replace(/^Value:\s*/, "").trim().split(",").filter(Boolean) as Role[];
        return { node: v.name, machine: v.name, address, roles, state: v.state, ssh: { host: address, port: 22, user: "root", identityFile: files.identityFile, knownHostsFile: files.knownHostsFile } };
      }),
    );
  }

  async start(cluster: string, node?: string): Promise<void> {
    for (const m of await this.list(cluster)) if ((!node || m.node === node) && m.state !== "running") await this.vbox(startVmCommand(m.node));
  }

  async stop(cluster: string, node?: string): Promise<void> {
    for (const m of await this.list(cluster)) if ((!node || m.node === node) && m.state === "running") await this.vbox(stopVmCommand(m.node));
  }

  async deleteMachine(cluster: string, node: string): Promise<void> {
    for (const m of await this.list(cluster)) {
      if (m.node !== node) continue;
      if (m.state === "running") await this.vbox(stopVmCommand(m.node, true), false);
      await this.vbox(deleteVmCommand(m.node));
    }
  }

  async delete(cluster: string): Promise<{ removed: string[] }> {
    const removed: string[] = [];
    for (const m of await this.list(cluster)) {
      if (m.state === "running") await this.vbox(stopVmCommand(m.node, true), false);
      await this.vbox(deleteVmCommand(m.node));
      removed.push(`vm ${m.node}`);
    }
    await this.vbox(deleteNetworkCommand(cluster), false);
    return { removed };
  }
}
