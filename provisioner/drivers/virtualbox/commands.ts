// The VBoxManage command lines the virtualbox driver runs, as argv arrays, and parsers for the
// output of the queries it makes. Pure. Syntax is VirtualBox 6.1/7.x's (VBoxManage(1)).
//
// How a cluster's things are found again, with no local state needed: every VM of cluster C is
// in VM group /kubeprov/C and carries a one-line description "kubeprov cluster=C node=N roles=R
// address=A" (the base VM: "kubeprov cluster=C base"); the cluster's host-only interface is named
// in VirtualBox's global extra data under kubeprov/C/hostonlyif.
import type { Role } from "../../spec/schema.js";

/** The snapshot of the imported base VM that nodes are linked clones of. */
export const BASE_SNAPSHOT = "kubeprov-base";
/** The storage controller the driver adds to each VM for its seed ISO (the OVA's own controllers are left alone). */
export const SEED_CONTROLLER = "kubeprov-seed";
/** Addresses of host-only networks: VirtualBox on Linux and macOS allows 192.168.56.0/21 unless /etc/vbox/networks.conf says otherwise. */
export const HOST_ONLY_POOL = "192.168.56.0/21";

export function vmGroup(cluster: string): string {
  return `/kubeprov/${cluster}`;
}
export function baseVmName(cluster: string): string {
  return `${cluster}-kubeprov-base`;
}
export function hostOnlyExtraDataKey(cluster: string): string {
  return `kubeprov/${cluster}/hostonlyif`;
}

export interface NodeDescription {
  cluster: string;
  node: string;
  roles: Role[];
  address: string;
}

export function describeNode(d: NodeDescription): string {
  return `kubeprov cluster=${d.cluster} node=${d.node} roles=${d.roles.join(",")} address=${d.address}`;
}
export function describeBase(cluster: string): string {
  return `kubeprov cluster=${cluster} base`;
}

/** A VM description written by describeNode; undefined for anything else (the base VM, a user's VM). */
export function parseNodeDescription(text: string): NodeDescription | undefined {
  const m = /^kubeprov cluster=(\S+) node=(\S+) roles=(\S*) address=(\S+)$/.exec(text.trim());
  if (!m) return undefined;
  return { cluster: m[1], node: m[2], roles: m[3].split(",").filter(Boolean) as Role[], address: m[4] };
}

// ---- commands ----------------------------------------------------------------------------------

export const versionCommand = (): string[] => ["--version"];
export const listVmsCommand = (): string[] => ["list", "vms"];
export const showVmInfoCommand = (vm: string): string[] => ["showvminfo", vm, "--machinereadable"];
export const listHostOnlyCommand = (): string[] => ["list", "hostonlyifs"];

/** Imports the user's OVA (its first virtual system) as the cluster's base VM. */
export function importBaseCommands(cluster: string, image: string, baseFolder: string): string[][] {
  const base = baseVmName(cluster);
  return [
    ["import", image, "--vsys", "0", "--vmname", base, "--group", vmGroup(cluster), "--basefolder", baseFolder],
    ["modifyvm", base, "--description", describeBase(cluster)],
    ["snapshot", base, "take", BASE_SNAPSHOT],
  ];
}

export interface NodeVm {
  cluster: string;
  node: string;
  roles: Role[];
  address: string;
  cpus: number;
  memoryMB: number;
  hostOnlyInterface: string;
  /** MAC addresses as VBoxManage takes them (12 hex digits). */
  natMac: string;
  hostOnlyMac: string;
  seedIso: string;
  consoleLog: string;
  baseFolder: string;
}

/**
 * One node: a linked clone of the base snapshot, a NAT adapter (the guest's way out) and a
 * host-only adapter (how kubeprov and the other nodes reach it), the first serial port written to
 * a file (cloud-init prints the host keys there), and the seed ISO on a controller of its own.
 */
export function createNodeCommands(vm: NodeVm): string[][] {
  return [
    ["clonevm", baseVmName(vm.cluster), "--snapshot", BASE_SNAPSHOT, "--options", "link", "--name", vm.node, "--groups", vmGroup(vm.cluster), "--basefolder", vm.baseFolder, "--register"],
    [
      "modifyvm", vm.node,
      "--cpus", String(vm.cpus),
      "--memory", String(vm.memoryMB),
      "--nic1", "nat", "--macaddress1", vm.natMac,
      "--nic2", "hostonly", "--hostonlyadapter2", vm.hostOnlyInterface, "--macaddress2", vm.hostOnlyMac,
      "--uart1", "0x3F8", "4", "--uartmode1", "file", vm.consoleLog,
      "--description", describeNode(vm),
    ],
    ["storagectl", vm.node, "--name", SEED_CONTROLLER, "--add", "ide"],
    ["storageattach", vm.node, "--storagectl", SEED_CONTROLLER, "--port", "0", "--device", "0", "--type", "dvddrive", "--medium", vm.seedIso],
  ];
}

export const startVmCommand = (vm: string): string[] => ["startvm", vm, "--type", "headless"];
/** ACPI power button: the guest shuts down cleanly; poweroff is the fallback after a time-out. */
export const acpiShutdownCommand = (vm: string): string[] => ["controlvm", vm, "acpipowerbutton"];
export const powerOffCommand = (vm: string): string[] => ["controlvm", vm, "poweroff"];
/** Unregisters the VM and deletes its settings, logs and disks (a linked clone's differencing disk). */
export const deleteVmCommand = (vm: string): string[] => ["unregistervm", vm, "--delete"];

export const createHostOnlyCommand = (): string[] => ["hostonlyif", "create"];
export const configureHostOnlyCommand = (ifname: string, hostIp: string, netmask: string): string[] => ["hostonlyif", "ipconfig", ifname, "--ip", hostIp, "--netmask", netmask];
export const removeHostOnlyCommand = (ifname: string): string[] => ["hostonlyif", "remove", ifname];
export const getExtraDataCommand = (key: string): string[] => ["getextradata", "global", key];
/** Without a value, setextradata deletes the key. */
export const setExtraDataCommand = (key: string, value?: string): string[] => ["setextradata", "global", key, ...(value === undefined ? [] : [value])];

// ---- parsers -----------------------------------------------------------------------------------

/** `VBoxManage list vms`: lines `"name" {uuid}`. */
export function parseVmList(text: string): Array<{ name: string; uuid: string }> {
  const out: Array<{ name: string; uuid: string }> = [];
  for (const line of text.split("\n")) {
    const m = /^"(.*)" \{([0-9a-fA-F-]+)\}\s*$/.exec(line);
    if (m) out.push({ name: m[1], uuid: m[2] });
  }
  return out;
}

/** `showvminfo --machinereadable`: key="value" (or key=value) lines; keys may be quoted too. */
export function parseMachineReadable(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^("([^"]*)"|[^=]+)=(.*)$/.exec(line.trimEnd());
    if (!m) continue;
    const key = m[2] ?? m[1];
    let value = m[3];
    if (value.startsWith('"') && value.endsWith('"') && value.length >= 2) value = value.slice(1, -1).replace(/\\"/g, '"').replace(/\\\\/g, "\\");
    out.set(key, value);
  }
  return out;
}

/** VMState values: running, paused, poweroff, aborted, saved, starting, stopping, ... Only running counts as running. */
export function vmRunning(info: Map<string, string>): boolean {
  return info.get("VMState") === "running";
}

export interface HostOnlyInterface {
  name: string;
  ip: string;
  netmask: string;
}

/** `VBoxManage list hostonlyifs`: blocks of "Key: value" lines, one block per interface. */
export function parseHostOnlyList(text: string): HostOnlyInterface[] {
  const out: HostOnlyInterface[] = [];
  let cur: HostOnlyInterface | undefined;
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z0-9]+):\s*(.*)$/.exec(line.trim());
    if (!m) continue;
    if (m[1] === "Name") {
      cur = { name: m[2].trim(), ip: "", netmask: "" };
      out.push(cur);
    } else if (cur && m[1] === "IPAddress") cur.ip = m[2].trim();
    else if (cur && m[1] === "NetworkMask") cur.netmask = m[2].trim();
  }
  return out;
}

/** "Interface 'vboxnet1' was successfully created" → "vboxnet1". */
export function parseCreatedHostOnly(text: string): string | undefined {
  return /Interface '([^']+)' was successfully created/.exec(text)?.[1];
}

/** `getextradata`: "Value: x" → "x"; "No value set!" → undefined. */
export function parseExtraData(text: string): string | undefined {
  const m = /^Value:\s*(.*)$/m.exec(text);
  return m && m[1].trim() !== "" ? m[1].trim() : undefined;
}

/** 255.255.255.0 → 24. */
export function prefixLength(netmask: string): number {
  return netmask.split(".").reduce((n, part) => n + (Number(part) >>> 0).toString(2).split("").filter((c) => c === "1").length, 0);
}
