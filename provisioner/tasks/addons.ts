// Addons: the data plane of the cluster. The bridge CNI configuration on every node (with the pod
// CIDR the controller-manager gave its Node), flannel for the routes between nodes' pod CIDRs (or
// the user's add-on, tasks/cnimanifest.ts), kube-proxy (iptables mode) and CoreDNS (its Service at
// the tenth address of the service subnet), then the optional add-ons of spec.addons (storage,
// metrics-server: tasks/optional-addons.ts).
import type { Host, RunContext, Task } from "../engine/task.js";
import { fileDifferences, fileStateCommand, parseFileState, sha256Hex } from "../engine/file-task.js";
import { HostError } from "../errors.js";
import { KUBELET_CONFIG } from "../constants.js";
import { parse as parseYaml } from "yaml";
import { nthAddress, parseCIDR, splitList } from "../spec/cidr.js";
import { apiClient, firstControlPlane, objectPath, waitFor, type KubeObject } from "../bootstrap/api.js";
import { isFirstControlPlane } from "../plan/topology.js";
import {
  apiServerURL,
  CNI_CONFIG_FILE,
  cniConfig,
  corednsObjects,
  flannelObjects,
  isUpstreamNameserver,
  kubeProxyObjects,
  nameservers,
  VXLAN_OVERHEAD,
} from "../bootstrap/manifests.js";
import { CLUSTER_ADMINS_TASK, objectsTask, waitForNode } from "./bootstrap.js";
import { readBundleManifest } from "../images/build.js";
import { bundlePath } from "./images.js";
import { optionalAddonTasks } from "./optional-addons.js";

export const CNI_TASK = "addons/cni";
export const KUBE_PROXY_TASK = "addons/kube-proxy";
export const COREDNS_TASK = "addons/coredns";
export const FLANNEL_TASK = "addons/flannel";
/** How long kube-controller-manager may take to give a registered Node its pod CIDR. */
export const POD_CIDR_TIMEOUT_MS = 60_000;

/** The first node-sized block of a single IPv4 pod subnet ("10.244.0.0/16", 24 → "10.244.0.0/24"), or undefined. */
export function firstNodeCIDR(podSubnet: string, maskSize: number): string | undefined {
  const subnets = splitList(podSubnet);
  if (subnets.length !== 1) return undefined;
  const c = parseCIDR(subnets[0]);
  if (!c || c.family !== 4 || c.prefix > maskSize) return undefined;
  return `${nthAddress(c, 0)}/${maskSize}`;
}

/**
 * The pod CIDR of `host`'s Node. kube-controller-manager assigns it, but only once its
 * controllers run (about 10 s after the API server is ready). When this Node is the only one (the
 * first control plane during init), kubeprov gives it the first block of the pod subnet itself:
 * the block kube-controller-manager's allocator picks first, and one it marks used when it sees
 * it. A pod CIDR cannot change once set, so if the controller wins the race its choice is kept.
 * With other Nodes present kubeprov waits for the controller (two allocators could collide).
 */
export async function nodePodCIDR(host: Host, ctx: RunContext): Promise<string> {
  const api = await apiClient(ctx);
  const node = await waitForNode(api, host, isFirstControlPlane(ctx, host) ? undefined : 30_000);
  const path = objectPath("v1", "Node", host.name);
  type NodeWithCidr = KubeObject & { spec?: { podCIDR?: string } };
  if ((node as NodeWithCidr).spec?.podCIDR) return (node as NodeWithCidr).spec!.podCIDR!;
  const net = ctx.cluster.spec.networking;
  const block = firstNodeCIDR(net.podSubnet, net.nodeCidrMaskSize);
  if (block) {
    const nodes = await api.list(objectPath("v1", "Node", ""));
    if (nodes.length === 1 && nodes[0].metadata.name === host.name) {
      const r = await api.mergePatch(path, { spec: { podCIDR: block, podCIDRs: [block] } });
      if (r.status >= 200 && r.status < 300) {
        ctx.log("debug", `gave Node ${host.name} pod CIDR ${block} (the first block, as the controller-manager would)`, host, CNI_TASK);
      }
    }
  }
  const cidr = await waitFor(async () => {
    const n = await api.get<NodeWithCidr>(path);
    return n?.spec?.podCIDR || undefined;
  }, POD_CIDR_TIMEOUT_MS);
  if (!cidr) {
    throw new HostError(
      host.name,
      CNI_TASK,
      `Node ${host.name} has no spec.podCIDR after ${POD_CIDR_TIMEOUT_MS / 1000} s`,
      `kube-controller-manager must run with --allocate-node-cidrs=true --cluster-cidr=${net.podSubnet}; see its log on the control plane`,
    );
  }
  return cidr;
}

/** Any node is a container (docker driver): kube-proxy must leave /proc/sys alone. */
function nodesAreContainers(ctx: RunContext): boolean {
  return ctx.hosts.some((h) => h.facts?.container);
}

/**
 * Whether pods with dnsPolicy Default (CoreDNS) have a nameserver to forward to: the kubelet's
 * resolvConf (from its config file) names one that is not loopback.
 */
export async function hasUpstreamNameserver(host: Host): Promise<boolean> {
  const cfg = (await host.transport.readFile(KUBELET_CONFIG))?.toString("utf8");
  let resolvPath = "/etc/resolv.conf";
  if (cfg) {
    const c = parseYaml(cfg) as { resolvConf?: string } | null;
    if (c?.resolvConf !== undefined) resolvPath = c.resolvConf;
  }
  if (!resolvPath) return false; // resolvConf: "" disables it
  const text = (await host.transport.readFile(resolvPath))?.toString("utf8") ?? "";
  return nameservers(text).some(isUpstreamNameserver);
}

/**
 * The bridge CNI configuration for `host`. With flannel's vxlan backend the bridge's MTU is the
 * node interface's (the one holding the node's address) less the encapsulation, as flannel sizes
 * its own flannel.1 device; otherwise the bridge's default.
 */
async function nodeCniConfig(host: Host, ctx: RunContext, podCIDR: string): Promise<string> {
  const net = ctx.cluster.spec.networking;
  if (net.cni !== "flannel" || net.flannelBackend !== "vxlan") return cniConfig(podCIDR, net.cni);
  const r = await host.transport.exec(
    `dev=$(ip -o -4 addr show | awk -v a=${JSON.stringify(host.nodeIP)} '{ split($4, p, "/"); if (p[1] == a) { print $2; exit } }'); [ -n "$dev" ] && cat "/sys/class/net/$dev/mtu"`,
  );
  const mtu = Number(r.stdout.trim());
  if (r.code !== 0 || !Number.isInteger(mtu) || mtu <= VXLAN_OVERHEAD)
    throw new HostError(host.name, CNI_TASK, `no interface holds the node's address ${host.nodeIP}, so the MTU for flannel's vxlan backend is unknown`);
  return cniConfig(podCIDR, net.cni, mtu - VXLAN_OVERHEAD);
}

export interface AddonsOptions {
  /** Tasks addons wait for (default: the cluster-admins binding of bootstrapTasks). */
  after?: string[];
  /** Nodes that get the CNI configuration (default: every host of the run). */
  cniHosts?: (ctx: RunContext) => Host[];
}

/**
 * The bridge CNI configuration on each node. check only reads (the Node's pod CIDR, the file's
 * state); apply waits for the Node, gives it a pod CIDR when it is alone (see nodePodCIDR), then
 * writes the file atomically.
 */
export function cniTask(opts: { hosts?: (ctx: RunContext) => Host[]; after?: string[]; name?: string; phase?: string } = {}): Task {
  const readCidr = async (host: Host, ctx: RunContext) => {
    const n = await (await apiClient(ctx)).get<KubeObject & { spec?: { podCIDR?: string } }>(objectPath("v1", "Node", host.name));
    return { registered: !!n, cidr: n?.spec?.podCIDR || undefined };
  };
  return {
    name: opts.name ?? CNI_TASK,
    phase: opts.phase ?? "addons",
    description: `bridge CNI configuration ${CNI_CONFIG_FILE} with the node's pod CIDR`,
    waitsFor: "the Node's registration and the pod CIDR the controller-manager gives it",
    // With cni "none" or "manifest" the user's add-on writes the CNI configuration.
    hosts: (ctx) => (ctx.cluster.spec.networking.cni === "none" || ctx.cluster.spec.networking.cni === "manifest" ? [] : (opts.hosts ?? ((c: RunContext) => c.hosts))(ctx)),
    ...(opts.after?.length ? { after: opts.after } : {}),
    perHost: true,
    checkAhead: true,
    async check(host, ctx) {
      const { registered, cidr } = await readCidr(host, ctx);
      if (!cidr) return { needed: true, reason: registered ? `Node ${host.name} has no pod CIDR yet` : `Node ${host.name} not registered yet` };
      const data = await nodeCniConfig(host, ctx, cidr);
      const state = parseFileState((await host.transport.exec(fileStateCommand(CNI_CONFIG_FILE), { sudo: true })).stdout);
      const diffs = fileDifferences(state, { sha256: sha256Hex(data), mode: 0o644 });
      if (!diffs.length) return { needed: false, reason: `${CNI_CONFIG_FILE} up to date (${cidr})` };
      return { needed: true, reason: `${state.exists ? "update" : "create"} ${CNI_CONFIG_FILE} (${cidr})${state.exists ? `: ${diffs.join(", ")}` : ""}` };
    },
    async apply(host, ctx) {
      const cidr = await nodePodCIDR(host, ctx);
      await host.transport.writeFile(CNI_CONFIG_FILE, await nodeCniConfig(host, ctx, cidr), { mode: 0o644 });
      return { detail: `wrote ${CNI_CONFIG_FILE} (${cidr})` };
    },
  };
}

export function addonsTasks(opts: AddonsOptions = {}): Task[] {
  const after = opts.after ?? [CLUSTER_ADMINS_TASK];
  return [
    cniTask({ ...(opts.cniHosts ? { hosts: opts.cniHosts } : {}), after }),
    objectsTask({
      name: KUBE_PROXY_TASK,
      phase: "addons",
      checkAhead: true,
      description: "kube-proxy DaemonSet (iptables mode) with its ServiceAccount, RBAC and ConfigMap",
      after,
      objects: (ctx) =>
        kubeProxyObjects(ctx.cluster, {
          server: apiServerURL(ctx.cluster, firstControlPlane(ctx).nodeIP),
          inContainer: nodesAreContainers(ctx),
        }),
    }),
    objectsTask({
      name: FLANNEL_TASK,
      phase: "addons",
      checkAhead: true,
      description: "flannel DaemonSet (routes between the nodes' pod CIDRs) with its RBAC and net-conf.json",
      after,
      hosts: (ctx) => (ctx.cluster.spec.networking.cni === "flannel" ? [firstControlPlane(ctx)] : []),
      objects: (ctx) => {
        const version = readBundleManifest(bundlePath(ctx.cluster)).flannelVersion;
        if (!version) throw new HostError(firstControlPlane(ctx).name, FLANNEL_TASK, `the bundle at ${bundlePath(ctx.cluster)} has no flanneld`, "rebuild it: bash scripts/build-bundle.sh");
        return flannelObjects(ctx.cluster, version, apiServerURL(ctx.cluster, firstControlPlane(ctx).nodeIP));
      },
    }),
    objectsTask({
      name: COREDNS_TASK,
      phase: "addons",
      checkAhead: true,
      description: "CoreDNS Deployment and the kube-dns Service",
      after,
      objects: async (ctx) =>
        corednsObjects(ctx.cluster, { upstream: await hasUpstreamNameserver(firstControlPlane(ctx)), apiServer: apiServerURL(ctx.cluster, firstControlPlane(ctx).nodeIP) }),
    }),
    ...optionalAddonTasks({ after }),
  ];
}
