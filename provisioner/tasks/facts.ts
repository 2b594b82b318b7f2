// The facts phase: learn each host once (OS, kernel, architecture, CPUs, memory, container,
// cgroup version, init system, package manager) with ONE remote command, and keep the result in
// host.facts for every later task. Gathering changes nothing, so it runs in a dry run too and is
// reported ok (readOnly).
import type { Host, HostFacts, Task } from "../engine/task.js";
import { renderTemplate } from "../render.js";

/**
 * A POSIX shell script printing key=value lines (templates/facts/facts.sh). os.* lines are
 * /etc/os-release's own lines (values still quoted as there); everything else is one value per line.
 */
export const FACTS_SCRIPT = renderTemplate("facts/facts.sh", {});

const ARCH: Record<string, string> = {
  x86_64: "amd64",
  amd64: "amd64",
  aarch64: "arm64",
  arm64: "arm64",
  armv7l: "arm",
  armv6l: "arm",
  ppc64le: "ppc64le",
  s390x: "s390x",
  riscv64: "riscv64",
};

/** `uname -m` → the Kubernetes/Go architecture name (unknown names pass through). */
export function goArch(machine: string): string {
  return ARCH[machine] ?? machine;
}

/** An /etc/os-release value: strips the quotes and undoes \" \\ \$ \` escapes. */
function osReleaseValue(raw: string): string {
  const v = raw.trim();
  if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v[v.length - 1] === v[0]) {
    const inner = v.slice(1, -1);
    return v[0] === '"' ? inner.replace(/\\([\\"$`])/g, "$1") : inner;
  }
  return v;
}

/** Parses the facts script's output into HostFacts. Pure; throws when an essential fact is missing. */
export function parseFacts(text: string): HostFacts {
  const kv = new Map<string, string>();
  for (const line of text.split("\n")) {
    const i = line.indexOf("=");
    if (i <= 0) continue;
    const k = line.slice(0, i).trim();
    if (!kv.has(k)) kv.set(k, line.slice(i + 1).replace(/\r$/, ""));
  }
  const get = (k: string) => kv.get(k)?.trim() ?? "";
  const os = (k: string) => (kv.has(`os.${k}`) ? osReleaseValue(kv.get(`os.${k}`)!) : "");

  const kernel = get("kernel");
  const machine = get("machine");
  if (!kernel || !machine) throw new Error(`facts: the host did not report its kernel and architecture (got ${JSON.stringify(text.slice(0, 300))})`);
  const cpus = parseInt(get("cpus"), 10);
  const memKB = parseInt(get("memtotal_kb"), 10);
  const pkg = get("pkg");
  const packageManager: HostFacts["packageManager"] = pkg === "apt-get" ? "apt" : pkg === "dnf" ? "dnf" : pkg === "yum" ? "yum" : "unknown";
  const container = get("container.dockerenv") === "1" || get("container.systemd") !== "" || get("container.environ") !== "";
  return {
    os: {
      id: os("ID") || "linux",
      versionId: os("VERSION_ID"),
      prettyName: os("PRETTY_NAME") || os("ID") || "Linux",
      idLike: os("ID_LIKE").split(/\s+/).filter(Boolean),
    },
    kernel,
    arch: goArch(machine),
    machine,
    cpus: Number.isFinite(cpus) && cpus > 0 ? cpus : 1,
    memoryMB: Number.isFinite(memKB) && memKB > 0 ? Math.floor(memKB / 1024) : 0,
    hostname: get("hostname"),
    container,
    cgroupVersion: get("cgroupfs") === "cgroup2fs" ? 2 : 1,
    systemd: get("pid1") === "systemd",
    packageManager,
    ...(get("pki.ca") === "1" ? { clusterCa: true } : {}),
  };
}

/** One line for output: "Debian GNU/Linux 12 (bookworm), kernel 6.1.0, amd64, 8 CPUs, 15890 MB, cgroup v2, systemd". */
export function describeFacts(f: HostFacts): string {
  return [
    f.os.prettyName,
    `kernel ${f.kernel}`,
    f.arch,
    `${f.cpus} CPU${f.cpus === 1 ? "" : "s"}`,
    `${f.memoryMB} MB`,
    `cgroup v${f.cgroupVersion}`,
    f.systemd ? "systemd" : "no systemd",
    ...(f.container ? ["container"] : []),
  ].join(", ");
}

/** Gathers the facts of one host (one remote command). */
export async function gatherFacts(host: Host): Promise<HostFacts> {
  const res = await host.transport.exec(FACTS_SCRIPT, { sudo: true, timeoutMs: 60_000 });
  return parseFacts(res.stdout);
}

export const FACTS_TASK = "facts/gather";

/** The facts task: runs on every host, first; fills host.facts. */
export const factsTask: Task = {
  name: FACTS_TASK,
  phase: "facts",
  description: "gather host facts (OS, kernel, CPUs, memory, cgroups, init system)",
  hosts: (ctx) => ctx.hosts,
  readOnly: true,
  async check() {
    return { needed: true, reason: "gather facts" };
  },
  async apply(host) {
    host.facts = await gatherFacts(host);
    return { detail: describeFacts(host.facts) };
  },
};
