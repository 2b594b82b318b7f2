// Phase "reset": undo what init/join did on a host (kubeadm reset), idempotent: the kubelet stopped
// and disabled, kubeprov's control-plane units removed, the pods removed (through the CRI, then
// whatever containerd still holds; images stay: a later init is fast), the mounts below the
// kubelet's directory and /run/netns released, then the paths of RESET_ALLOW_LIST removed (and
// nothing else: never through a symlink, never across a mount), the iptables chains kube-proxy and
// the CNI plugins made dropped, their interfaces and this node's kubelet cgroup root removed, and
// last the cluster marker. The binaries, containerd and its configuration (the prepare phase) stay,
// as kubeadm reset keeps the packages and the runtime.
// The scripts are templates/reset/{reset,remove,leftovers}.sh. A host whose marker names another
// cluster is refused (nothing changed) unless the command says --ignore-cluster-marker. Every
// step runs even when one failed; the task then fails with every failed step.
import { CLUSTER_MARKER_FILE, CNI_CONF_DIR, ETCD_DATA_DIR, KUBELET_DIR, KUBERNETES_DIR, MANIFESTS_DIR, PKI_DIR } from "../constants.js";
import { HostError } from "../errors.js";
import type { CheckResult, Host, RunContext, Task } from "../engine/task.js";
import { ALL_COMPONENTS } from "./controlplane-flags.js";
import { NODE_IMAGES_UPLOAD_DIR } from "./images.js";
import { KUBELET_CGROUP_SCRIPT, KUBELET_DROPIN, KUBELET_UNIT, kubeletCgroupRoot } from "./kubelet.js";
import { HAPROXY_CONFIG, KEEPALIVED_CHECK_SCRIPT, KEEPALIVED_CONFIG } from "./ha.js";
import { renderTemplate } from "../render.js";
import { shq } from "../transport/transport.js";

export const RESET_TASK = "reset/node";
/** ctx.options key: reset a host even when its marker names another cluster. */
export const IGNORE_CLUSTER_MARKER_OPTION = "ignoreClusterMarker";

/**
 * Everything reset removes, in one place: kubeadm's paths plus what kubeprov itself wrote for
 * init/join. An entry is an absolute path, or a pattern whose last component holds `*`
 * (/etc/kubernetes/*.conf). Removed in this order; the cluster marker is always last.
 */
export const RESET_ALLOW_LIST: readonly string[] = [
  // kubeadm's /etc/kubernetes: static pod manifests, certificates, kubeconfigs, its tmp directory.
  MANIFESTS_DIR,
  PKI_DIR,
  `${KUBERNETES_DIR}/*.conf`,
  `${KUBERNETES_DIR}/tmp`,
  // State of the kubelet, etcd and the CNI plugins (IPAM leases, cached results, flannel's lease).
  KUBELET_DIR,
  ETCD_DATA_DIR,
  "/var/lib/cni",
  "/run/flannel",
  // Network namespace files the CNI plugins left (unmounted first).
  "/run/netns/cni-*",
  // The CNI configuration kubeprov wrote (flannel and bridge both use this file).
  `${CNI_CONF_DIR}/10-kubeprov-bridge.conflist`,
  // kubeprov's helper scripts and its image upload directory.
  KUBELET_CGROUP_SCRIPT,
  NODE_IMAGES_UPLOAD_DIR,
  CLUSTER_MARKER_FILE,
];

/**
 * Files removed only when kubeprov wrote them (their text names kubeprov): the kubelet's unit is
 * written only when the host has none, and a unit someone else installed (or masked) stays.
 * Part of the allow-list; checked after the paths above, before the marker.
 */
export const RESET_KUBEPROV_FILES: readonly string[] = [
  KUBELET_DROPIN,
  KUBELET_UNIT,
  ...ALL_COMPONENTS.map((c) => `/etc/systemd/system/${c}.service`),
  // An HA control plane's: keepalived and haproxy are stopped first when these are kubeprov's.
  KEEPALIVED_CONFIG,
  KEEPALIVED_CHECK_SCRIPT,
  HAPROXY_CONFIG,
];

/** Directories kubeprov made to hold the entries above: removed only when empty (anything else in them stays). */
export const RESET_EMPTY_DIRS: readonly string[] = [KUBERNETES_DIR, "/etc/systemd/system/kubelet.service.d", "/usr/local/lib/kubeprov", "/var/lib/kubeprov", "/run/netns"];

/** Everything mounted below these is unmounted (deepest first) before any path is removed. */
export const RESET_UNMOUNT_BELOW: readonly string[] = [KUBELET_DIR, "/run/netns"];

/** iptables chain prefixes of kube-proxy and the CNI plugins (KUBE-SERVICES, CNI-HOSTPORT-DNAT, FLANNEL-FWD…). */
export const RESET_CHAIN_PREFIXES: readonly string[] = ["KUBE", "CNI", "FLANNEL"];

/** Network interfaces the CNI plugins made (the bridge plugin's, flannel's VXLAN device). */
export const RESET_LINKS: readonly string[] = ["cni0", "flannel.1"];

const SAFE_PATH = /^(\/[A-Za-z0-9._-]+)+$/;
const SAFE_PATTERN = /^[A-Za-z0-9._*-]+$/;

/**
 * Checks an allow-list entry and renders it as one shell word: the directory part quoted, a
 * pattern in the last component left for the shell to expand. Refuses anything else (relative,
 * `..`, `//`, a trailing slash, a pattern above the last component), so no entry can name a
 * symlink's target with `link/` or climb out of its directory.
 */
export function allowListWord(entry: string): string {
  const cut = entry.lastIndexOf("/");
  const dir = entry.slice(0, cut);
  const last = entry.slice(cut + 1);
  const ok = cut > 0 && SAFE_PATH.test(dir) && !dir.split("/").some((c) => c === "." || c === "..") && SAFE_PATTERN.test(last) && last !== "." && last !== ".." && last !== "*";
  if (!ok) throw new Error(`reset allow-list: ${JSON.stringify(entry)} is not an absolute, normalized path (a pattern only in its last component)`);
  return last.includes("*") ? `${shq(`${dir}/`)}${last}` : shq(entry);
}

function words(paths: readonly string[]): string {
  return paths.map(allowListWord).join(" ");
}

export interface ResetScriptOptions {
  clusterName: string;
  /** This node's kubelet cgroup root (node containers), or none. */
  cgroupRoot?: string;
  ignoreClusterMarker?: boolean;
  /** Overrides for tests; the defaults are the constants above. */
  allowList?: readonly string[];
  kubeprovFiles?: readonly string[];
  emptyDirs?: readonly string[];
  unmountBelow?: readonly string[];
  markerFile?: string;
}

/** The safe-removal functions alone (templates/reset/remove.sh): remove_path, unmount_below, fail. */
export function removeFunctions(): string {
  return renderTemplate("reset/remove.sh", {});
}

/** The reset script for one host (templates/reset/reset.sh). Pure. */
export function resetScript(o: ResetScriptOptions): string {
  const marker = o.markerFile ?? CLUSTER_MARKER_FILE;
  const list = (o.allowList ?? RESET_ALLOW_LIST).filter((p) => p !== marker);
  if (o.cgroupRoot !== undefined && !SAFE_PATH.test(o.cgroupRoot)) throw new Error(`reset: cgroup root ${JSON.stringify(o.cgroupRoot)} is not a plain absolute path`);
  return renderTemplate("reset/reset.sh", {
    markerFile: allowListWord(marker),
    clusterName: shq(o.clusterName),
    ignoreMarker: o.ignoreClusterMarker ? 1 : 0,
    removeFunctions: removeFunctions().trimEnd(),
    componentUnits: ALL_COMPONENTS.join(" "),
    unmountBelow: words(o.unmountBelow ?? RESET_UNMOUNT_BELOW),
    removePaths: words(list),
    kubeprovFiles: words(o.kubeprovFiles ?? RESET_KUBEPROV_FILES),
    chainPrefixes: RESET_CHAIN_PREFIXES.join("|"),
    links: RESET_LINKS.map(shq).join(" "),
    cgroupRoot: shq(o.cgroupRoot ?? ""),
    keepalivedConfig: allowListWord(KEEPALIVED_CONFIG),
    haproxyConfig: allowListWord(HAPROXY_CONFIG),
    emptyDirs: words(o.emptyDirs ?? RESET_EMPTY_DIRS),
  });
}

/** What is left on the host, one line each, and the marker's cluster (templates/reset/leftovers.sh). Read-only. */
export function leftoversScript(): string {
  return renderTemplate("reset/leftovers.sh", {
    markerFile: allowListWord(CLUSTER_MARKER_FILE),
    paths: words(RESET_ALLOW_LIST),
    kubeprovFiles: words(RESET_KUBEPROV_FILES),
    mountPattern: RESET_UNMOUNT_BELOW.map((d) => d.replace(/[.]/g, "\\.")).join("|"),
    chainPrefixes: RESET_CHAIN_PREFIXES.join("|"),
    links: RESET_LINKS.map(shq).join(" "),
  });
}

export interface Leftovers {
  /** The cluster the marker file names ("" when there is none). */
  marker: string;
  items: string[];
}

/** Parses the leftovers script's output. Pure. */
export function parseLeftovers(stdout: string): Leftovers {
  let marker = "";
  const items: string[] = [];
  for (const line of stdout.split("\n").map((l) => l.trim()).filter(Boolean)) {
    if (line.startsWith("marker ")) marker = line.slice("marker ".length).trim();
    else items.push(line);
  }
  return { marker, items };
}

/** The failed steps in the reset script's output ("failed STEP: MESSAGE" lines). Pure. */
export function parseResetOutput(stdout: string): { refusedBy?: string; failures: string[] } {
  const lines = stdout.split("\n").map((l) => l.trim());
  const refused = lines.find((l) => l.startsWith("refused "));
  return {
    ...(refused ? { refusedBy: refused.slice("refused ".length) } : {}),
    failures: lines.filter((l) => l.startsWith("failed ")).map((l) => l.slice("failed ".length)),
  };
}

function markerRefusal(host: Host, other: string, name: string): HostError {
  return new HostError(
    host.name,
    RESET_TASK,
    `${CLUSTER_MARKER_FILE} says this host belongs to cluster ${other}, not ${name}: refusing to reset it, nothing was changed. Reset it with ${other}'s cluster file, or pass --ignore-cluster-marker`,
  );
}

async function leftovers(host: Host): Promise<Leftovers> {
  const r = await host.transport.exec(leftoversScript(), { sudo: true, check: false });
  return parseLeftovers(r.stdout);
}

export function resetTasks(): Task[] {
  return [
    {
      name: RESET_TASK,
      phase: "reset",
      description: "stop the kubelet and control plane, remove pods, release mounts, remove Kubernetes' files (allow-list), CNI configuration and iptables chains",
      hosts: (ctx: RunContext) => ctx.hosts,
      async check(host: Host, ctx: RunContext): Promise<CheckResult> {
        const left = await leftovers(host);
        const name = ctx.cluster.metadata.name;
        if (left.marker && left.marker !== name && !ctx.options[IGNORE_CLUSTER_MARKER_OPTION]) throw markerRefusal(host, left.marker, name);
        return left.items.length ? { needed: true, reason: `remove ${left.items.join(", ")}` } : { needed: false, reason: "nothing of Kubernetes left" };
      },
      async apply(host: Host, ctx: RunContext) {
        const name = ctx.cluster.metadata.name;
        const script = resetScript({ clusterName: name, cgroupRoot: kubeletCgroupRoot(ctx.cluster, host), ignoreClusterMarker: Boolean(ctx.options[IGNORE_CLUSTER_MARKER_OPTION]) });
        const r = await host.transport.exec(script, { sudo: true, check: false, timeoutMs: 180_000 });
        const out = parseResetOutput(r.stdout);
        // The script checks the marker again itself (the host could have changed since the check).
        if (out.refusedBy !== undefined) throw markerRefusal(host, out.refusedBy, name);
        const failures = [...out.failures];
        if (r.code !== 0) failures.push(`reset script exited ${r.code ?? "on a signal"}${r.stderr.trim() ? `: ${r.stderr.trim().split("\n").slice(-3).join(" ")}` : ""}`);
        const left = await leftovers(host);
        if (failures.length) {
          const n = failures.length;
          throw new HostError(
            host.name,
            RESET_TASK,
            `reset failed in ${n} step${n === 1 ? "" : "s"} (the others ran; ${CLUSTER_MARKER_FILE} stays until a reset succeeds): ${failures.join("; ")}`,
            [...failures, ...(left.items.length ? [`still present: ${left.items.join(", ")}`] : [])].join("\n"),
          );
        }
        if (left.items.length) ctx.log("warn", `still present after reset: ${left.items.join(", ")}`, host, RESET_TASK);
        return { detail: left.items.length ? `reset; still present: ${left.items.join(", ")}` : "reset" };
      },
    },
  ];
}
