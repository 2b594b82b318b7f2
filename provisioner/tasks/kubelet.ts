// Phase "kubelet-start": the kubelet's configuration (/var/lib/kubelet/config.yaml), its unit and
// flags drop-in, and the service enabled and running; restarted only when one of them changed.
import { KUBELET_CGROUP_PARENT, KUBELET_CONFIG, KUBELET_KUBECONFIG, KUBERNETES_DIR, MANIFESTS_DIR } from "../constants.js";
import { renderTemplate } from "../render.js";
import { nthAddress } from "../spec/cidr.js";
import type { Cluster } from "../spec/schema.js";
import type { Host, RunContext, Task } from "../engine/task.js";
import { serviceTask, type ServiceFile } from "./service.js";

export const KUBELET_UNIT = "/etc/systemd/system/kubelet.service";
export const KUBELET_DROPIN = "/etc/systemd/system/kubelet.service.d/10-kubeprov.conf";
export const KUBELET_RESOLV_CONF = "/var/lib/kubelet/resolv.conf";
export const KUBELET_CGROUP_SCRIPT = "/usr/local/lib/kubeprov/kubelet-cgroup-root.sh";
export { KUBELET_KUBECONFIG };
export const BOOTSTRAP_KUBELET_KUBECONFIG = `${KUBERNETES_DIR}/bootstrap-kubelet.conf`;
export const DEFAULT_CRI_ENDPOINT = "unix:///run/containerd/containerd.sock";
export const KUBELET_START_TASK = "kubelet-start/kubelet";

/** The kubelet's clusterDNS: the tenth address of the service subnet (as kubeadm). */
export function clusterDNSAddress(cluster: Cluster): string {
  const first = cluster.spec.networking.serviceSubnet.split(",")[0].trim();
  return nthAddress(first, 10);
}

export function criEndpoint(cluster: Cluster, host: Host): string {
  const s = host.spec.criSocket ?? cluster.spec.containerRuntime.criSocket ?? DEFAULT_CRI_ENDPOINT;
  return s.includes("://") ? s : `unix://${s}`;
}

export function minorOf(version: string): number {
  return Number(/^v?\d+\.(\d+)/.exec(version)?.[1] ?? 0);
}

/** Node containers share the host's cgroups: each node's kubelet gets its own root. */
export function kubeletCgroupRoot(cluster: Cluster, host: Host): string | undefined {
  return host.facts?.container ? `/${KUBELET_CGROUP_PARENT}/${cluster.metadata.name}/${host.name}` : undefined;
}

/** /var/lib/kubelet/config.yaml for this host. Pure. */
export function renderKubeletConfig(cluster: Cluster, host: Host): string {
  const hostSettings: string[] = [];
  const cgroupRoot = kubeletCgroupRoot(cluster, host);
  if (cgroupRoot) hostSettings.push(`cgroupRoot: ${cgroupRoot}`);
  if (host.facts?.cgroupVersion === 1 && minorOf(cluster.spec.kubernetesVersion) >= 35) hostSettings.push("failCgroupV1: false");
  return renderTemplate("kubelet/config.yaml", {
    cgroupDriver: cluster.spec.containerRuntime.cgroupDriver,
    containerRuntimeEndpoint: criEndpoint(cluster, host),
    clusterDNS: clusterDNSAddress(cluster),
    clusterDomain: cluster.spec.networking.dnsDomain,
    resolvConf: KUBELET_RESOLV_CONF,
    // A node container cannot turn the host's swap off; preflight reports swap on real hosts.
    failSwapOn: host.facts?.container ? "false" : "true",
    hostSettings: hostSettings.length ? hostSettings.join("\n") : "# (none)",
  });
}

/** The kubelet's command line (the rest is in config.yaml). */
export function kubeletArgs(cluster: Cluster, host: Host, opts: { bootstrap?: boolean } = {}): string[] {
  const flags = new Map<string, string>([
    ["config", KUBELET_CONFIG],
    ["kubeconfig", KUBELET_KUBECONFIG],
    ...(opts.bootstrap ? [["bootstrap-kubeconfig", BOOTSTRAP_KUBELET_KUBECONFIG] as [string, string]] : []),
    ["hostname-override", host.name],
    ["node-ip", host.nodeIP],
  ]);
  for (const [k, v] of Object.entries(cluster.spec.controlPlane.extraArgs.kubelet ?? {})) flags.set(k.replace(/^--/, ""), v);
  return [...flags].map(([k, v]) => `--${k}=${v}`);
}

/** Resolver for pods with dnsPolicy Default and CoreDNS's upstreams: the host's, minus loopback
 * nameservers (Docker's 127.0.0.11 would be the pod itself). */
export function podResolvConf(hostResolvConf: string): string {
  const kept = hostResolvConf
    .split("\n")
    .filter((l) => {
      const m = /^\s*nameserver\s+(\S+)/.exec(l);
      return !m || !(m[1].startsWith("127.") || m[1] === "::1");
    })
    .filter((l) => /^\s*(nameserver|search|options|domain)\b/.test(l));
  return ["# Written by kubeprov: the host's resolv.conf without loopback nameservers.", ...kept, ""].join("\n");
}

export function systemdQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./*-]+$/.test(arg) ? arg : `"${arg.replace(/\\/g, "\\\\").replace(/"/g, '\\"')}"`;
}

/** ExecStart= value: the program and its arguments, one per continued line. */
export function execStartLine(program: string, args: string[]): string {
  return [program, ...args.map(systemdQuote)].join(" \\\n  ");
}

export async function kubeletFiles(cluster: Cluster, host: Host, opts: { bootstrap?: boolean } = {}): Promise<ServiceFile[]> {
  const resolv = (await host.transport.readFile("/etc/resolv.conf"))?.toString("utf8") ?? "";
  const cgroupRoot = kubeletCgroupRoot(cluster, host);
  const files: ServiceFile[] = [
    { path: KUBELET_UNIT, content: renderTemplate("systemd/kubelet.service", {}), mode: 0o644, createOnly: true },
    {
      path: KUBELET_DROPIN,
      content: renderTemplate("systemd/kubelet.service.d/10-kubeprov.conf", {
        execStartPre: cgroupRoot ? `ExecStartPre=${KUBELET_CGROUP_SCRIPT}` : "# (no cgroup root to prepare)",
        execStart: execStartLine("/usr/local/bin/kubelet", kubeletArgs(cluster, host, opts)),
      }),
      mode: 0o644,
    },
    { path: KUBELET_CONFIG, content: renderKubeletConfig(cluster, host), mode: 0o644 },
    { path: KUBELET_RESOLV_CONF, content: podResolvConf(resolv), mode: 0o644 },
  ];
  if (cgroupRoot) files.push({ path: KUBELET_CGROUP_SCRIPT, content: renderTemplate("kubelet/cgroup-root.sh", { cgroupRoot }), mode: 0o755 });
  return files;
}

export function kubeletStartTask(opts: { after?: string[]; hosts?: (ctx: RunContext) => Host[]; bootstrap?: boolean; name?: string; perHost?: boolean } = {}): Task {
  return serviceTask({
    name: opts.name ?? KUBELET_START_TASK,
    ...(opts.perHost ? { perHost: true } : {}),
    phase: "kubelet-start",
    description: "write the kubelet configuration and flags; kubelet enabled and running",
    unit: "kubelet",
    hosts: opts.hosts ?? ((ctx) => ctx.hosts),
    ...(opts.after ? { after: opts.after } : {}),
    files: (host, ctx) => kubeletFiles(ctx.cluster, host, { bootstrap: opts.bootstrap }),
    beforeStart: async (host) => {
      await host.transport.exec(`mkdir -p ${MANIFESTS_DIR} && chmod 0755 ${MANIFESTS_DIR}`, { sudo: true });
    },
  });
}
