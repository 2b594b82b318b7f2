// What `preflight --fix` does, planned as data from the gathered sections (pure, unit-tested):
// each step names the check it repairs, the files it writes and the commands it runs. A host that
// needs nothing gets no steps, so a second --fix changes nothing.
import type { Cluster, Role } from "../spec/schema.js";
import { MODULES, MODULES_FILE, SYSCTLS, SYSCTL_FILE, type Sections } from "./gather.js";
import {
  covered,
  formatRange,
  fstabSwapLines,
  lines,
  moduleNeedsNoPersist,
  moduleState,
  parseBinaries,
  parseFirewalldPorts,
  parseSwaps,
  parseUfw,
  rolePorts,
  sysctlValues,
} from "./checks.js";
import { shq } from "../transport/transport.js";

export interface FixFile {
  path: string;
  content: string;
  mode: number;
}

export interface FixStep {
  /** The check ID this repairs. */
  id: string;
  description: string;
  /** Written first (atomically, by the transport). */
  files: FixFile[];
  /** Then run, in order, as root. */
  commands: string[];
  /** A problem --fix cannot repair on this host (reported, nothing run). */
  cannot?: string;
}

export interface FixInput {
  host: string;
  nodeIP: string;
  roles: Role[];
  cluster: Cluster;
  sections: Sections;
}

export const FSTAB_BACKUP = "/etc/fstab.kubeprov.bak";

export function sysctlFileContent(): string {
  return ["# Written by kubeprov (preflight --fix): settings Kubernetes networking needs.", ...SYSCTLS.map((k) => `${k} = 1`), ""].join("\n");
}

export function modulesFileContent(mods: readonly string[] = MODULES): string {
  return ["# Written by kubeprov (preflight --fix): modules Kubernetes needs at boot.", ...mods, ""].join("\n");
}

export function planFixes(i: FixInput): FixStep[] {
  const s = i.sections;
  const steps: FixStep[] = [];
  const bins = parseBinaries(s["binaries"]);

  // Swap: off now, and out of /etc/fstab (backup kept once).
  const swapsOn = parseSwaps(s["swaps"]);
  const fstab = fstabSwapLines(s["fstab"]);
  if (swapsOn.length > 0 || fstab.length > 0) {
    const commands: string[] = [];
    if (swapsOn.length > 0) commands.push("swapoff -a");
    if (fstab.length > 0) {
      commands.push(`[ -e ${FSTAB_BACKUP} ] || cp -p /etc/fstab ${FSTAB_BACKUP}`);
      commands.push(`sed -i -E 's@^([^#[:space:]][^[:space:]]*[[:space:]]+[^[:space:]]+[[:space:]]+swap([[:space:]].*)?)$@# \\1  # disabled by kubeprov@' /etc/fstab`);
    }
    steps.push({ id: "Swap", description: `turn swap off${fstab.length ? ` and comment it out of /etc/fstab (backup ${FSTAB_BACKUP})` : ""}`, files: [], commands });
  }

  // Firewalls: open the role's ports, or disable, per spec.firewall.
  const ports = rolePorts(i.roles, i.cluster);
  if ((s["firewalld"] ?? "").trim() === "active") {
    const missing = ports.filter((p) => !covered(p, parseFirewalldPorts(s["firewalld-ports"])));
    if (missing.length > 0) {
      if (i.cluster.spec.firewall === "disable") steps.push({ id: "Firewalld", description: "disable firewalld", files: [], commands: ["systemctl disable --now firewalld"] });
      else
        steps.push({
          id: "Firewalld",
          description: `open ${missing.map((p) => formatRange(p)).join(", ")} in firewalld`,
          files: [],
          commands: [`firewall-cmd --permanent ${missing.map((p) => `--add-port=${formatRange(p)}`).join(" ")}`, "firewall-cmd --reload"],
        });
    }
  }
  const ufw = parseUfw(s["ufw"]);
  if (ufw.active) {
    const missing = ports.filter((p) => !covered(p, ufw.allowed));
    if (missing.length > 0) {
      if (i.cluster.spec.firewall === "disable") steps.push({ id: "Ufw", description: "disable ufw", files: [], commands: ["ufw disable"] });
      else steps.push({ id: "Ufw", description: `allow ${missing.map((p) => formatRange(p, ":")).join(", ")} in ufw`, files: [], commands: missing.map((p) => `ufw allow ${formatRange(p, ":")}`) });
    }
  }

  // SELinux: permissive now and at boot.
  const enforcing = (s["selinux"] ?? "").trim() === "Enforcing";
  const cfgEnforcing = /SELINUX=enforcing/.test(s["selinux-config"] ?? "");
  if (enforcing || cfgEnforcing) {
    const commands: string[] = [];
    if (enforcing) commands.push("setenforce 0");
    if (cfgEnforcing) commands.push("sed -i 's/^SELINUX=enforcing/SELINUX=permissive/' /etc/selinux/config");
    steps.push({ id: "SELinux", description: "set SELinux to permissive", files: [], commands });
  }

  // Kernel modules: modprobe what is missing and persist real modules; built-in ones need nothing.
  const mods = MODULES.map((m) => moduleState(m, s));
  const toPersist = mods.filter((m) => !moduleNeedsNoPersist(m, s)).map((m) => m.name);
  const missingMods = mods.filter((m) => !m.loaded).map((m) => m.name);
  const persisted = lines(s["modules-file"]).filter((l) => !l.startsWith("#"));
  const persistOk = toPersist.every((m) => persisted.includes(m));
  if (missingMods.length > 0 || !persistOk) {
    steps.push({
      id: missingMods.length ? `KernelModule-${missingMods[0]}` : `KernelModule-${toPersist[0]}`,
      description: `${missingMods.length ? `load ${missingMods.join(", ")} and ` : ""}list ${toPersist.join(", ")} in ${MODULES_FILE}`,
      files: persistOk ? [] : [{ path: MODULES_FILE, content: modulesFileContent(toPersist), mode: 0o644 }],
      commands: missingMods.map((m) => `modprobe ${shq(m)}`),
    });
  }

  // Sysctls: the file always (cheap to keep right); the live values only where /proc/sys is writable.
  const vals = sysctlValues(s);
  const wrong = SYSCTLS.filter((k) => vals.get(k)?.value !== "1");
  const fileOk = (s["sysctl-file"] ?? "").trim() === sysctlFileContent().trim();
  if (wrong.length > 0 || !fileOk) {
    const writable = wrong.filter((k) => vals.get(k)?.writable);
    const readOnly = wrong.filter((k) => !vals.get(k)?.writable);
    const hasSysctl = bins.get("sysctl") !== undefined;
    steps.push({
      id: `FileContent--proc-sys-${(wrong[0] ?? SYSCTLS[0]).replace(/\./g, "-")}`,
      description: `write ${SYSCTL_FILE}${writable.length ? ` and apply ${writable.join(", ")}` : ""}`,
      files: fileOk ? [] : [{ path: SYSCTL_FILE, content: sysctlFileContent(), mode: 0o644 }],
      commands: writable.length ? [hasSysctl ? `sysctl -p ${SYSCTL_FILE}` : writable.map((k) => `echo 1 > /proc/sys/${k.replace(/\./g, "/")}`).join(" && ")] : [],
      cannot: readOnly.length ? `${readOnly.join(", ")} not 1 and /proc/sys is read-only here: set it on the machine that runs this host` : undefined,
    });
  }

  // Hostname: the node name, resolvable.
  const h = (s["hostname"] ?? "").trim();
  if (h !== i.host) {
    const hostnamectl = bins.get("hostnamectl") !== undefined && bins.get("systemctl") !== undefined;
    steps.push({
      id: "Hostname",
      description: `set the hostname to ${i.host}`,
      files: [],
      commands: [
        hostnamectl
          ? `hostnamectl set-hostname ${shq(i.host)} 2>/dev/null || { hostname ${shq(i.host)} && printf '%s\\n' ${shq(i.host)} > /etc/hostname; }`
          : `hostname ${shq(i.host)} && printf '%s\\n' ${shq(i.host)} > /etc/hostname`,
      ],
    });
  }
  if (h !== i.host || lines(s["getent"]).length === 0) {
    // Appended in place (Docker bind-mounts /etc/hosts: it cannot be renamed over).
    steps.push({
      id: "Hostname",
      description: `make ${i.host} resolvable (/etc/hosts)`,
      files: [],
      commands: [`getent hosts ${shq(i.host)} >/dev/null || printf '%s %s\\n' ${shq(i.nodeIP)} ${shq(i.host)} >> /etc/hosts`],
    });
  }
  return steps;
}
