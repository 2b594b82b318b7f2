// `kubeprov status`: what each host looks like, gathered by a list of probes (one command each).
// Every probe adds fields to the host's status; later issues add probes (components, etcd,
// certificate expiry) without touching the rest. Read-only: probes change nothing on a host.
import type { Cluster } from "../spec/schema.js";
import type { Host } from "../engine/task.js";
import { SSH_CONNECT_CONCURRENCY, BIN_DIR } from "../constants.js";
import { BastionPool, mapLimit, openTransport } from "../transport/pool.js";
import { toHost } from "../engine/hosts.js";

export interface OsInfo {
  id: string;
  versionId: string;
  prettyName: string;
}

export interface BinaryInfo {
  path: string;
  /** First version-looking word of `<binary> --version`, or undefined if it printed none. */
  version?: string;
}

export interface InstalledInfo {
  binaries: Record<string, BinaryInfo>;
  /** systemd ActiveState of units that exist (active, inactive, failed, ...). Empty without systemd. */
  services: Record<string, string>;
}

export interface HostStatus {
  name: string;
  address: string;
  port?: number;
  reachable: boolean;
  error?: string;
  os?: OsInfo;
  kernel?: string;
  cpus?: number;
  memoryMB?: number;
  installed?: InstalledInfo;
  /** Probes that failed on a reachable host: probe name → message. */
  probeErrors?: Record<string, string>;
  /** Fields added by later probes. */
  [field: string]: unknown;
}

/**
 * A probe either gives a read-only shell `script` and a `parse` of its output (all such probes of a
 * host run in ONE command: a command costs an SSH session, the slow part), or a `run` of its own.
 * Either way it returns the fields it adds to the host's status, and changes nothing on the host.
 */
export type StatusProbe =
  | { name: string; script: string; parse(stdout: string): Partial<HostStatus> }
  | { name: string; run(host: Host): Promise<Partial<HostStatus>> };

const PROBE_MARK = "@@kubeprov-probe";

/** One command running every scripted probe, each section introduced by a marker line. */
export function combinedProbeScript(probes: Array<{ name: string; script: string }>): string {
  return probes.map((p) => `echo '${PROBE_MARK} ${p.name}'\n( ${p.script}\n) 2>/dev/null || echo '${PROBE_MARK}-failed ${p.name}'`).join("\n");
}

/** Split the combined output back into each probe's stdout (undefined: its script failed). */
export function splitProbeOutput(stdout: string): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>();
  let current: string | undefined;
  let lines: string[] = [];
  const flush = () => {
    if (current !== undefined) out.set(current, lines.join("\n"));
  };
  for (const line of stdout.split("\n")) {
    if (line.startsWith(`${PROBE_MARK}-failed `)) {
      flush();
      out.set(line.slice(PROBE_MARK.length + 8), undefined);
      current = undefined;
      lines = [];
    } else if (line.startsWith(`${PROBE_MARK} `)) {
      flush();
      current = line.slice(PROBE_MARK.length + 1);
      lines = [];
    } else lines.push(line);
  }
  flush();
  return out;
}

/** Parse `key=value` lines (values may contain '='). */
export function parseKeyValues(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) out[line.slice(0, i)] = line.slice(i + 1);
  }
  return out;
}

const SYSTEM_SCRIPT = `
( . /etc/os-release 2>/dev/null; printf 'os.id=%s\\nos.versionId=%s\\nos.prettyName=%s\\n' "\${ID:-}" "\${VERSION_ID:-}" "\${PRETTY_NAME:-}" )
printf 'kernel=%s\\n' "$(uname -r)"
printf 'cpus=%s\\n' "$(getconf _NPROCESSORS_ONLN 2>/dev/null || nproc 2>/dev/null)"
printf 'memKB=%s\\n' "$(awk '/^MemTotal:/ {print $2}' /proc/meminfo 2>/dev/null)"
`.trim();

export const systemProbe: StatusProbe = {
  name: "system",
  script: SYSTEM_SCRIPT,
  parse(stdout) {
    const kv = parseKeyValues(stdout);
    const cpus = Number(kv.cpus);
    const memKB = Number(kv.memKB);
    return {
      os: { id: kv["os.id"] ?? "", versionId: kv["os.versionId"] ?? "", prettyName: kv["os.prettyName"] ?? "" },
      kernel: kv.kernel ?? "",
      cpus: Number.isFinite(cpus) && cpus > 0 ? cpus : undefined,
      memoryMB: Number.isFinite(memKB) && memKB > 0 ? Math.round(memKB / 1024) : undefined,
    };
  },
};

/** Binaries kubeprov installs or relies on, and how each tells its version. */
export const STATUS_BINARIES: Array<{ name: string; versionArgs: string }> = [
  { name: "kubelet", versionArgs: "--version" },
  { name: "kubectl", versionArgs: "version --client" },
  { name: "kubeadm", versionArgs: "version -o short" },
  { name: "kube-apiserver", versionArgs: "--version" },
  { name: "kube-controller-manager", versionArgs: "--version" },
  { name: "kube-scheduler", versionArgs: "--version" },
  { name: "kube-proxy", versionArgs: "--version" },
  { name: "etcd", versionArgs: "--version" },
  { name: "containerd", versionArgs: "--version" },
  { name: "runc", versionArgs: "--version" },
  { name: "crictl", versionArgs: "--version" },
];
export const STATUS_SERVICES = ["kubelet", "containerd", "etcd"];

function installedScript(): string {
  const bins = STATUS_BINARIES.map(
    (b) => `p=$(command -v ${b.name} 2>/dev/null) || { [ -x ${BIN_DIR}/${b.name} ] && p=${BIN_DIR}/${b.name}; } || p=
if [ -n "$p" ]; then v=$(timeout 10 "$p" ${b.versionArgs} 2>&1 | head -n 3 | tr '\\n' ' '); printf 'bin\\t%s\\t%s\\t%s\\n' ${b.name} "$p" "$v"; fi`,
  );
  const svcs = `if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for s in ${STATUS_SERVICES.join(" ")}; do
    st=$(systemctl show -p LoadState -p ActiveState "$s" 2>/dev/null | tr '\\n' ' ')
    case "$st" in *LoadState=loaded*) printf 'svc\\t%s\\t%s\\n' "$s" "$(printf '%s' "$st" | sed -n 's/.*ActiveState=\\([a-z-]*\\).*/\\1/p')";; esac
  done
fi`;
  return [...bins, svcs].join("\n");
}

/** The first version-looking word ("v1.37.2", "3.4.23", "1.6.20~ds1"). */
export function extractVersion(text: string): string | undefined {
  const m = /\bv?\d+\.\d+\.\d+[0-9A-Za-z.~+-]*/.exec(text);
  return m?.[0];
}

export const installedProbe: StatusProbe = {
  name: "installed",
  script: installedScript(),
  parse(stdout) {
    const installed: InstalledInfo = { binaries: {}, services: {} };
    for (const line of stdout.split("\n")) {
      const [kind, name, a, b] = line.split("\t");
      if (kind === "bin" && name) installed.binaries[name] = { path: a, version: extractVersion(b ?? "") };
      if (kind === "svc" && name && a) installed.services[name] = a;
    }
    return { installed };
  },
};

export const DEFAULT_PROBES: StatusProbe[] = [systemProbe, installedProbe];

export interface StatusOptions {
  probes?: StatusProbe[];
  acceptNewHostKeys?: boolean;
  concurrency?: number;
  connectTimeoutMs?: number;
  /** The driver's state of each machine (driver clusters): a machine that is not running is not connected to. */
  machines?: Map<string, "running" | "stopped" | "missing">;
}

/** Connect to every host (in parallel, bounded), run the probes, close. Never throws for a host. */
export async function collectStatus(cluster: Cluster, opts: StatusOptions = {}): Promise<HostStatus[]> {
  const probes = opts.probes ?? DEFAULT_PROBES;
  const bastions = new BastionPool();
  return mapLimit(cluster.spec.hosts, opts.concurrency ?? SSH_CONNECT_CONCURRENCY, async (spec): Promise<HostStatus> => {
    const port = spec.connection === "local" ? undefined : (spec.ssh?.port ?? cluster.spec.ssh.port);
    const base: HostStatus = { name: spec.name, address: spec.address, port, reachable: false };
    const machine = opts.machines?.get(spec.name);
    if (machine && machine !== "running") return { ...base, error: machine === "stopped" ? "machine stopped" : "no such machine" };
    let host: Host;
    try {
      host = toHost(spec, await openTransport(cluster, spec, { acceptNewHostKeys: opts.acceptNewHostKeys, connectTimeoutMs: opts.connectTimeoutMs, bastions }));
    } catch (e) {
      const msg = (e as Error).message;
      return { ...base, error: msg.startsWith(`${spec.name}: `) ? msg.slice(spec.name.length + 2) : msg };
    }
    const status: HostStatus = { ...base, reachable: true };
    try {
      await runProbes(host, probes, status);
    } finally {
      await host.transport.close().catch(() => undefined);
    }
    return status;
  });
}

/** Run the probes on one connected host and merge their fields into status. */
export async function runProbes(host: Host, probes: StatusProbe[], status: HostStatus): Promise<void> {
  const fail = (name: string, message: string) => ((status.probeErrors ??= {})[name] = message);
  const scripted = probes.flatMap((p) => ("script" in p ? [p] : []));
  const custom = probes.flatMap((p) => ("run" in p ? [p] : []));
  const combined = async () => {
    if (!scripted.length) return;
    const r = await host.transport.exec(combinedProbeScript(scripted), { check: false, timeoutMs: 60_000 });
    const parts = splitProbeOutput(r.stdout);
    for (const p of scripted) {
      const out = parts.get(p.name);
      if (out === undefined) fail(p.name, parts.has(p.name) ? "its command failed" : `no output (exit ${r.code}): ${r.stderr.trim()}`);
      else {
        try {
          Object.assign(status, p.parse(out));
        } catch (e) {
          fail(p.name, (e as Error).message);
        }
      }
    }
  };
  const results = await Promise.allSettled([combined(), ...custom.map((p) => p.run(host))]);
  results.forEach((res, i) => {
    if (i === 0) {
      if (res.status === "rejected") for (const p of scripted) fail(p.name, (res.reason as Error).message);
    } else if (res.status === "fulfilled") Object.assign(status, res.value);
    else fail(custom[i - 1].name, (res.reason as Error).message);
  });
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length)));
  return rows.map((r) => r.map((cell, c) => (c === r.length - 1 ? cell : cell.padEnd(widths[c]))).join("  ").trimEnd()).join("\n");
}

export function summarizeInstalled(i: InstalledInfo | undefined): string {
  if (!i) return "-";
  const bins = Object.entries(i.binaries).map(([n, b]) => (b.version ? `${n} ${b.version}` : n));
  const svcs = Object.entries(i.services).map(([n, s]) => `${n}.service ${s}`);
  const all = [...bins, ...svcs];
  return all.length ? all.join(", ") : "nothing";
}

/** The text table `kubeprov status` prints, with unreachable hosts' errors below it. */
export function renderStatusText(statuses: HostStatus[]): string {
  const withState = statuses.some((s) => typeof s.state === "string");
  const rows = [["HOST", ...(withState ? ["STATE"] : []), "ADDRESS", "REACHABLE", "OS", "KERNEL", "CPUS", "MEMORY", "INSTALLED"]];
  for (const s of statuses) {
    rows.push([
      s.name,
      ...(withState ? [String(s.state ?? "-")] : []),
      s.port ? `${s.address}:${s.port}` : s.address,
      s.reachable ? "yes" : "NO",
      s.os?.prettyName || s.os?.id || "-",
      s.kernel || "-",
      s.cpus !== undefined ? String(s.cpus) : "-",
      s.memoryMB !== undefined ? `${s.memoryMB} MiB` : "-",
      s.reachable ? summarizeInstalled(s.installed) : "-",
    ]);
  }
  const lines = [table(rows)];
  const problems = statuses.flatMap((s) => [
    ...(s.error ? [`${s.name}: ${s.error}`] : []),
    ...(s.state !== "NotInstalled" && Array.isArray(s.stateReasons) && s.reachable ? (s.stateReasons as string[]).map((r) => `${s.name}: ${s.state}: ${r}`) : []),
    ...Object.entries(s.probeErrors ?? {}).map(([p, m]) => `${s.name}: probe ${p} failed: ${m}`),
  ]);
  if (problems.length) lines.push("", ...problems);
  return `${lines.join("\n")}\n`;
}
