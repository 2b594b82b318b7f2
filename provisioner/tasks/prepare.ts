// Phase "prepare": get each host ready to run the kubelet. The Kubernetes binaries from the
// artifact source (uploaded by kubeprov, never fetched by the host), the container runtime
// (containerd from the distribution's packages when no CRI is found, configured from
// templates/containerd/config.toml and restarted only when that changed), crictl's config and the
// CNI plugins. The kubelet's unit, config and start belong to the kubelet-start tasks.
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  BIN_DIR,
  CLUSTER_MARKER_FILE,
  CNI_BIN_DIRS,
  CNI_CONF_DIR,
  CONTAINERD_CERTS_DIR,
  CONTAINERD_CONFIG,
  CRICTL_CONFIG,
  IMAGE_REGISTRY,
  PAUSE_VERSION,
} from "../constants.js";
import { HostError } from "../errors.js";
import { resolveArtifacts, type ResolvedArtifacts } from "../artifacts.js";
import { bundleDir, expandHome } from "../paths.js";
import { renderTemplate } from "../render.js";
import type { Cluster } from "../spec/schema.js";
import { shq } from "../transport/transport.js";
import type { CheckResult, Host, HostFacts, RunContext, Task } from "../engine/task.js";
import { bundleOnHost } from "./images.js";
import { fileTask, sha256Hex } from "../engine/file-task.js";
import { registryMirrorsTask } from "./mirrors.js";
import { clusterImageRef } from "../images/catalog.js";
import { decideCri, KNOWN_CRI_SOCKETS, type CriDecision } from "../preflight/cri.js";
import { criSocketOverride, listeningUnixSockets } from "../preflight/checks.js";
import { LISTENING_KNOWN_SCRIPT, parseSections, SECTION_PREFIX, UNIX_LISTENING_SCRIPT } from "../preflight/gather.js";

export const PREPARE_PHASE = "prepare";
export const PREPARE_BINARIES_TASK = "prepare/binaries";
export const PREPARE_CNI_TASK = "prepare/cni-plugins";
export const PREPARE_RUNTIME_INSTALL_TASK = "prepare/containerd-install";
export const PREPARE_CONTAINERD_CONFIG_TASK = "prepare/containerd-config";
export const PREPARE_CRICTL_TASK = "prepare/crictl-config";
export const PREPARE_MARKER_TASK = "prepare/cluster-marker";

export const PAUSE_IMAGE = `${IMAGE_REGISTRY}/pause:${PAUSE_VERSION}`;

/** The sandbox (pause) image containerd runs pods with: under spec.images.repository when set. */
export function pauseImage(cluster: Cluster): string {
  return clusterImageRef(cluster, "pause", { kubernetesVersion: cluster.spec.kubernetesVersion, etcdVersion: "", corednsVersion: "" });
}

// ---------- what each host gets (pure) ----------

/** Binaries a host needs from the artifact source. kube-proxy runs as a DaemonSet image, kubeadm is not used. */
export function binariesFor(cluster: Cluster, roles: readonly string[], available?: readonly string[]): string[] {
  // An external etcd host runs etcd only (a systemd unit); etcdctl and etcdutl for membership and snapshots.
  if (roles.includes("etcd")) return ["etcd", "etcdctl", "etcdutl"].filter((n) => n === "etcd" || available === undefined || available.includes(n));
  const names = ["kubelet", "kubectl"];
  if (roles.includes("control-plane") && cluster.spec.controlPlane.mode === "systemd") {
    names.push("kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "etcdctl");
  }
  // etcdctl on every control plane: kubeprov adds, promotes and removes stacked etcd members with it,
  // and operators use it for snapshots and health checks.
  if (roles.includes("control-plane") && !names.includes("etcdctl") && (available === undefined || available.includes("etcdctl"))) names.push("etcdctl");
  // etcdutl next to it: `kubeprov etcd snapshot restore` rebuilds a data directory with it (offline).
  if (roles.includes("control-plane") && (available === undefined || available.includes("etcdutl"))) names.push("etcdutl");
  if (available?.includes("crictl")) names.push("crictl");
  return names;
}

/** The bundle directory of a `dir` artifact source. */
export function artifactsDir(cluster: Cluster): string {
  return cluster.spec.artifacts.path ? expandHome(cluster.spec.artifacts.path) : bundleDir(cluster.spec.kubernetesVersion);
}

/** Binaries listed in the bundle's manifest (empty for download or no bundle). Synchronous: used in hosts(). */
export function bundleBinaryNames(cluster: Cluster): string[] {
  if (cluster.spec.artifacts.source !== "dir") return [];
  try {
    const m = JSON.parse(readFileSync(join(artifactsDir(cluster), "manifest.json"), "utf8")) as { sha256?: Record<string, string> };
    return Object.keys(m.sha256 ?? {});
  } catch {
    return [];
  }
}

/** containerd's configuration for this host (templates/containerd/config.toml). Pure. */
export function renderContainerdConfig(cluster: Cluster, opts: { container: boolean; cniBinDir: string }): string {
  const driver = cluster.spec.containerRuntime.cgroupDriver;
  return renderTemplate("containerd/config.toml", {
    sandboxImage: pauseImage(cluster),
    registryConfigPath: CONTAINERD_CERTS_DIR,
    restrictOomScoreAdj: opts.container,
    cgroupDriver: driver,
    systemdCgroup: driver === "systemd",
    cniBinDir: opts.cniBinDir,
    cniConfDir: CNI_CONF_DIR,
  });
}

export function renderCrictlConfig(socket: string): string {
  return renderTemplate("containerd/crictl.yaml", { endpoint: socket.includes("://") ? socket : `unix://${socket}` });
}

export type PackageManager = HostFacts["packageManager"];

/**
 * The commands that install packages on this OS family. Debian/Ubuntu: apt-get. RHEL family:
 * dnf/yum; containerd there is Docker's `containerd.io` package (RHEL, CentOS, Rocky, Alma have
 * none of their own), Fedora's own packages otherwise. Pure (unit-tested; only Debian runs here).
 */
export function installCommands(pm: PackageManager, osId: string, what: "containerd" | "cni-plugins" | "ha"): string[] {
  if (what === "ha") {
    // haproxy and keepalived have the same package names on Debian/Ubuntu and the RHEL family.
    if (pm === "apt") return ["DEBIAN_FRONTEND=noninteractive apt-get update -q", "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends haproxy keepalived"];
    if (pm === "dnf" || pm === "yum") return [`${pm} -y install haproxy keepalived`];
    throw new Error("no known package manager on this host (apt-get, dnf or yum): install haproxy and keepalived yourself");
  }
  if (pm === "apt") {
    const pkgs = what === "containerd" ? "containerd runc" : "containernetworking-plugins";
    return ["DEBIAN_FRONTEND=noninteractive apt-get update -q", `DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends ${pkgs}`];
  }
  if (pm === "dnf" || pm === "yum") {
    const pkgs = what === "containerd" ? (osId === "fedora" ? "containerd runc" : "containerd.io") : "containernetworking-plugins";
    return [`${pm} -y install ${pkgs}`];
  }
  throw new Error(`no known package manager on this host (apt-get, dnf or yum): install ${what === "containerd" ? "containerd and runc" : "the CNI plugins"} yourself`);
}

/** CNI plugin directory from `ls`-style probe output (first directory holding `bridge`). */
export function pickCniBinDir(found: string[]): string | undefined {
  return CNI_BIN_DIRS.find((d) => found.includes(d));
}

// ---------- probing a host (one command) ----------

export interface RuntimeProbe {
  decision: CriDecision;
  containerdBinary: boolean;
  cniBinDir?: string;
  configSha256?: string;
  active: boolean;
  enabled: boolean;
  crictl: boolean;
}

export function runtimeProbeScript(): string {
  const s = (n: string) => `echo ${shq(SECTION_PREFIX + n)}`;
  return [
    "export LC_ALL=C PATH=\"$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"",
    s("sockets"), `for p in ${KNOWN_CRI_SOCKETS.map(shq).join(" ")}; do if [ -S "$p" ]; then echo "$p socket"; fi; done`,
    s("unix-listening"), UNIX_LISTENING_SCRIPT,
    s("listening-known"), LISTENING_KNOWN_SCRIPT,
    s("containerd"), "command -v containerd >/dev/null 2>&1 && echo yes || echo no",
    s("crictl"), "command -v crictl >/dev/null 2>&1 && echo yes || echo no",
    s("cni"), `for d in ${CNI_BIN_DIRS.join(" ")}; do [ -x "$d/bridge" ] && echo "$d"; done; true`,
    s("config"), `sha256sum ${CONTAINERD_CONFIG} 2>/dev/null | cut -d' ' -f1 || true`,
    s("active"), "systemctl is-active containerd 2>/dev/null || true",
    s("enabled"), "systemctl is-enabled containerd 2>/dev/null || true",
    s("end"),
  ].join("\n");
}

export function parseRuntimeProbe(stdout: string, criSocket?: string): RuntimeProbe {
  const sec = parseSections(stdout);
  const lines = (k: string) => (sec[k] ?? "").split("\n").map((l) => l.trim()).filter(Boolean);
  return {
    decision: decideCri(listeningUnixSockets(sec), criSocket),
    containerdBinary: sec["containerd"] === "yes",
    crictl: sec["crictl"] === "yes",
    cniBinDir: pickCniBinDir(lines("cni")),
    configSha256: /^[0-9a-f]{64}$/.test(sec["config"] ?? "") ? sec["config"] : undefined,
    active: (sec["active"] ?? "") === "active",
    enabled: (sec["enabled"] ?? "") === "enabled",
  };
}

async function probe(host: Host, ctx: RunContext): Promise<RuntimeProbe> {
  const r = await host.transport.exec(runtimeProbeScript(), { sudo: true });
  const p = parseRuntimeProbe(r.stdout, criSocketOverride(ctx.cluster, host.name));
  if (p.cniBinDir) ctx.shared.set(cniKey(host), p.cniBinDir);
  ctx.shared.set(criKey(host), p.decision);
  return p;
}

const cniKey = (h: Host) => `prepare/cniBinDir/${h.name}`;
const criKey = (h: Host) => `prepare/cri/${h.name}`;

/** The CNI plugin directory prepare found (or installed) on this host; Debian's path until known. */
export function cniBinDirOf(ctx: RunContext, host: Host): string {
  return (ctx.shared.get(cniKey(host)) as string | undefined) ?? CNI_BIN_DIRS[0];
}

/** The CRI endpoint for the kubelet on this host: the cluster file's criSocket, else what prepare detected, else containerd's. */
export function criSocketOf(ctx: RunContext, host: Host): string {
  const d = ctx.shared.get(criKey(host)) as CriDecision | undefined;
  const override = criSocketOverride(ctx.cluster, host.name);
  const socket = override ?? (d?.kind === "use" ? d.socket : "/run/containerd/containerd.sock");
  return socket.includes("://") ? socket : `unix://${socket}`;
}

/** containerd is ours to manage on this host: no other runtime was found or set. */
function managesContainerd(p: RuntimeProbe): boolean {
  return p.decision.kind === "none" || (p.decision.kind === "use" && p.decision.runtime === "containerd");
}

function criFailure(host: Host, task: string, d: CriDecision): HostError {
  return new HostError(host.name, task, d.kind === "error" ? d.reason : "no usable container runtime");
}

// ---------- artifacts, once per run ----------

/**
 * The artifacts for `names`. verify: the local files are hashed against the bundle's manifest
 * (before anything is copied from them); without it the manifest's digests are taken as they are
 * (enough to compare with what a host has, and no local file is read).
 */
async function artifactsFor(ctx: RunContext, host: Host, names: string[], verify: boolean): Promise<ResolvedArtifacts> {
  const arch = host.facts?.arch ?? "amd64";
  const key = `prepare/artifacts/${arch}/${verify}/${[...names].sort().join(",")}`;
  let p = ctx.shared.get(key) as Promise<ResolvedArtifacts> | undefined;
  if (!p) {
    p = resolveArtifacts(ctx.cluster, { arch, names, verify });
    p.catch(() => {}); // observed by every caller
    ctx.shared.set(key, p);
  }
  return p;
}

function hostBinaries(ctx: RunContext, host: Host): string[] {
  return binariesFor(ctx.cluster, host.roles, bundleBinaryNames(ctx.cluster));
}

/** Where a host records the stat of the binaries kubeprov installed, with their sha256. */
export const BINARIES_STAMP = "/var/lib/kubeprov/binaries.sha256";

const binPaths = (names: string[]) => names.map((n) => shq(`${BIN_DIR}/${n}`)).join(" ");

/** "SHA256 MODE" lines in the order of `names` → map by name. */
function hashLines(names: string[], lines: string[]): Map<string, string> {
  return new Map(names.map((n, i) => [n, (lines[i] ?? "").trim()]));
}

/**
 * Which binaries differ from the artifacts. The host hashes only binaries whose stat changed since
 * kubeprov recorded them (templates/prepare/binary-hashes.sh), so a converged host reads none.
 */
async function binariesToUpdate(ctx: RunContext, host: Host, verify: boolean): Promise<{ art: ResolvedArtifacts; stale: string[]; stampFresh: boolean }> {
  const names = hostBinaries(ctx, host);
  const art = await artifactsFor(ctx, host, names, verify);
  const r = await host.transport.exec(renderTemplate("prepare/binary-hashes.sh", { paths: binPaths(names), stamp: shq(BINARIES_STAMP) }), { sudo: true });
  const lines = r.stdout.trim().split("\n");
  const have = hashLines(names, lines);
  const stale = names.filter((n) => have.get(n) !== `${art.binaries[n]!.sha256} 755`);
  return { art, stale, stampFresh: lines[names.length] === "stamp fresh" };
}

// ---------- the tasks ----------

function binariesTask(): Task {
  return {
    name: PREPARE_BINARIES_TASK,
    phase: PREPARE_PHASE,
    description: `Kubernetes binaries in ${BIN_DIR} (from the artifact source, checked by sha256)`,
    hosts: (ctx) => ctx.hosts,
    async check(host, ctx): Promise<CheckResult> {
      const { stale, art, stampFresh } = await binariesToUpdate(ctx, host, false);
      if (stale.length) return { needed: true, reason: `install ${stale.join(", ")} into ${BIN_DIR} (${art.source})` };
      if (!stampFresh) return { needed: true, reason: `record the binaries' sha256 and stat in ${BINARIES_STAMP}` };
      return { needed: false, reason: `${hostBinaries(ctx, host).join(", ")} up to date (${art.source})` };
    },
    async apply(host, ctx) {
      const { stale, art } = await binariesToUpdate(ctx, host, false);
      const names = hostBinaries(ctx, host);
      const want = (n: string) => `${art.binaries[n]!.sha256} 755`;
      // A host that sees the bundle (docker driver mount, or this machine) copies from it and
      // hashes only the copy (its sum must be the artifact's, so the source needs no hash of its
      // own); the same script records the stamp.
      const seen = `${bundleOnHost(ctx.cluster, host)}/bin`;
      let landed = await stampBinaries(host, names, { source: seen, copies: stale.map((n) => `${n}=${art.binaries[n]!.sha256}`) });
      const copied = stale.filter((n) => landed.get(n) === want(n));
      // Whatever the host could not copy is uploaded from this machine's bundle, verified here first.
      const uploaded = stale.filter((n) => !copied.includes(n));
      if (uploaded.length) {
        const verified = await artifactsFor(ctx, host, uploaded, true);
        for (const n of uploaded) await host.transport.writeFile(`${BIN_DIR}/${n}`, await readFile(verified.binaries[n]!.path), { mode: 0o755 });
        landed = await stampBinaries(host, names);
      }
      // Verify what landed (a truncated upload must not pass); a mismatch removes the stamp again,
      // so the next check hashes everything.
      const bad = names.filter((n) => landed.get(n) !== want(n));
      if (bad.length) {
        await host.transport.exec(`rm -f ${shq(BINARIES_STAMP)}`, { sudo: true });
        throw new HostError(host.name, PREPARE_BINARIES_TASK, `sha256 of ${bad.join(", ")} in ${BIN_DIR} does not match the artifact after copying`);
      }
      const detail = [uploaded.length ? `uploaded ${uploaded.join(", ")}` : "", copied.length ? `copied ${copied.join(", ")} from the bundle the host sees at ${dirname(seen)}` : "", stale.length ? "" : `recorded ${BINARIES_STAMP}`].filter(Boolean).join("; ");
      ctx.log("info", detail, host, PREPARE_BINARIES_TASK);
      return { detail };
    },
  };
}

/**
 * templates/prepare/binary-stamp.sh: copies `copies` ("NAME=SHA256") from `source` on the host
 * when given, records the stamp, and returns "SHA256 MODE" of every binary by name.
 */
async function stampBinaries(host: Host, names: string[], copy: { source: string; copies: string[] } = { source: "", copies: [] }): Promise<Map<string, string>> {
  const script = renderTemplate("prepare/binary-stamp.sh", {
    paths: binPaths(names),
    stamp: shq(BINARIES_STAMP),
    copies: copy.copies.map(shq).join(" "),
    source: shq(copy.source || "/nonexistent"),
    binDir: shq(BIN_DIR),
  });
  const r = await host.transport.exec(script, { sudo: true });
  return hashLines(names, r.stdout.trim().split("\n"));
}

function cniPluginsTask(): Task {
  return {
    name: PREPARE_CNI_TASK,
    phase: PREPARE_PHASE,
    description: `CNI plugins present (${CNI_BIN_DIRS.join(" or ")})`,
    hosts: (ctx) => ctx.hosts,
    async check(host, ctx): Promise<CheckResult> {
      const p = await probe(host, ctx);
      if (p.cniBinDir) return { needed: false, reason: `CNI plugins in ${p.cniBinDir}` };
      return { needed: true, reason: "install the CNI plugins (containernetworking-plugins)" };
    },
    async apply(host, ctx) {
      const f = host.facts;
      for (const c of installCommands(f?.packageManager ?? "unknown", f?.os.id ?? "", "cni-plugins")) await host.transport.exec(c, { sudo: true, timeoutMs: 15 * 60_000 });
      const p = await probe(host, ctx);
      if (!p.cniBinDir) throw new HostError(host.name, PREPARE_CNI_TASK, `CNI plugins installed but no bridge plugin in ${CNI_BIN_DIRS.join(", ")}`);
      return { detail: `CNI plugins in ${p.cniBinDir}` };
    },
  };
}

function runtimeInstallTask(): Task {
  return {
    name: PREPARE_RUNTIME_INSTALL_TASK,
    phase: PREPARE_PHASE,
    description: "containerd installed when no container runtime is found",
    hosts: (ctx) => ctx.hosts,
    // One package manager run at a time on a host (dpkg/rpm locks).
    after: [PREPARE_CNI_TASK],
    perHost: true,
    async check(host, ctx): Promise<CheckResult> {
      const p = await probe(host, ctx);
      if (p.decision.kind === "error") throw criFailure(host, PREPARE_RUNTIME_INSTALL_TASK, p.decision);
      if (!managesContainerd(p)) return { needed: false, reason: `using ${p.decision.kind === "use" ? p.decision.socket : "?"} (${p.decision.kind === "use" ? p.decision.reason : ""})` };
      if (p.containerdBinary) return { needed: false, reason: "containerd is installed" };
      return { needed: true, reason: "install containerd and runc from the distribution's packages" };
    },
    async apply(host) {
      const f = host.facts;
      for (const c of installCommands(f?.packageManager ?? "unknown", f?.os.id ?? "", "containerd")) await host.transport.exec(c, { sudo: true, timeoutMs: 15 * 60_000 });
      return { detail: "containerd installed" };
    },
  };
}

const WAIT_CONTAINERD = "i=0; while [ $i -lt 100 ]; do ctr version >/dev/null 2>&1 && exit 0; i=$((i+1)); sleep 0.2; done; exit 1";

function containerdConfigTask(): Task {
  const want = (ctx: RunContext, host: Host) =>
    renderContainerdConfig(ctx.cluster, { container: host.facts?.container ?? false, cniBinDir: cniBinDirOf(ctx, host) });
  return {
    name: PREPARE_CONTAINERD_CONFIG_TASK,
    phase: PREPARE_PHASE,
    description: `${CONTAINERD_CONFIG} from templates/containerd/config.toml; containerd enabled and running`,
    hosts: (ctx) => ctx.hosts,
    after: [PREPARE_RUNTIME_INSTALL_TASK, PREPARE_CNI_TASK],
    perHost: true,
    async check(host, ctx): Promise<CheckResult> {
      const p = await probe(host, ctx);
      if (p.decision.kind === "error") throw criFailure(host, PREPARE_CONTAINERD_CONFIG_TASK, p.decision);
      if (!managesContainerd(p)) return { needed: false, reason: "containerd is not this host's runtime" };
      const todo: string[] = [];
      if (p.configSha256 !== sha256Hex(want(ctx, host))) todo.push(`write ${CONTAINERD_CONFIG}`);
      if (!p.enabled) todo.push("enable containerd");
      if (!p.active || todo.length) todo.push(p.active ? "restart containerd" : "start containerd");
      return todo.length ? { needed: true, reason: todo.join(", ") } : { needed: false, reason: "containerd configured and running" };
    },
    async apply(host, ctx) {
      const p = await probe(host, ctx);
      const content = want(ctx, host);
      const write = p.configSha256 !== sha256Hex(content);
      if (write) await host.transport.writeFile(CONTAINERD_CONFIG, content, { mode: 0o644 });
      if (!p.enabled) await host.transport.exec("systemctl enable containerd", { sudo: true });
      if (write || !p.active) await host.transport.exec("systemctl restart containerd", { sudo: true });
      const up = await host.transport.exec(WAIT_CONTAINERD, { sudo: true, check: false, timeoutMs: 60_000 });
      if (up.code !== 0) {
        const log = await host.transport.exec("journalctl -u containerd -n 30 --no-pager 2>&1 || true", { sudo: true, check: false });
        throw new HostError(host.name, PREPARE_CONTAINERD_CONFIG_TASK, "containerd did not answer (`ctr version`) within 20 s of starting", log.stdout);
      }
      return { detail: [write ? `wrote ${CONTAINERD_CONFIG}` : "", write || !p.active ? "containerd restarted" : "", !p.enabled ? "enabled" : ""].filter(Boolean).join(", ") };
    },
  };
}

function crictlConfigTask(): Task {
  return fileTask({
    name: PREPARE_CRICTL_TASK,
    phase: PREPARE_PHASE,
    description: `${CRICTL_CONFIG} pointing crictl at the CRI socket`,
    path: CRICTL_CONFIG,
    mode: 0o644,
    // Only where crictl comes with the bundle (it is not in Debian bookworm).
    hosts: (ctx) => (bundleBinaryNames(ctx.cluster).includes("crictl") ? ctx.hosts : []),
    after: [PREPARE_CONTAINERD_CONFIG_TASK],
    perHost: true,
    content: (host, ctx) => renderCrictlConfig(criSocketOf(ctx, host)),
  });
}

/** The marker's content: the cluster's name on one line. */
export function markerContent(cluster: Cluster): string {
  return `${cluster.metadata.name}\n`;
}

/**
 * The first change kubeprov makes to a host: CLUSTER_MARKER_FILE names the cluster that owns it.
 * Preflight reads it so that a re-run (or a run after a half-done one) on this cluster's own
 * files and ports passes; a host another cluster owns is refused, never taken over.
 */
function markerTask(): Task {
  return {
    name: PREPARE_MARKER_TASK,
    phase: PREPARE_PHASE,
    description: `${CLUSTER_MARKER_FILE} names the cluster that owns the host`,
    hosts: (ctx) => ctx.hosts,
    async check(host, ctx): Promise<CheckResult> {
      const have = (await host.transport.readFile(CLUSTER_MARKER_FILE))?.toString("utf8").trim();
      const name = ctx.cluster.metadata.name;
      if (have === name) return { needed: false, reason: `host belongs to ${name}` };
      if (have) throw new HostError(host.name, PREPARE_MARKER_TASK, `this host belongs to cluster ${have} (${CLUSTER_MARKER_FILE}); run \`kubeprov reset\` for that cluster first`);
      return { needed: true, reason: `write ${CLUSTER_MARKER_FILE} (${name})` };
    },
    async apply(host, ctx) {
      await host.transport.writeFile(CLUSTER_MARKER_FILE, markerContent(ctx.cluster), { mode: 0o644 });
      return {};
    },
  };
}

const afterMarker = (t: Task): Task => ({ ...t, after: [PREPARE_MARKER_TASK, ...(t.after ?? [])], perHost: true });

/** The prepare phase: the cluster marker, then binaries, CNI plugins, containerd install and config, crictl config, registry mirrors. */
export function prepareTasks(): Task[] {
  const mirrors: Task = { ...registryMirrorsTask(), after: [PREPARE_RUNTIME_INSTALL_TASK] };
  return [markerTask(), ...[binariesTask(), cniPluginsTask(), runtimeInstallTask(), containerdConfigTask(), crictlConfigTask(), mirrors].map(afterMarker)];
}
