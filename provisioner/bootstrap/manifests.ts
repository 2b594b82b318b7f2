// The Kubernetes objects bootstrap and addons keep in the cluster, rendered from templates/addons/
// (readable YAML with named placeholders) into typed objects. Pure: no API calls here.
import { parseAllDocuments, stringify } from "yaml";
import { COREDNS_VERSION, LOCAL_PATH_PROVISIONER_NAME, PORT_APISERVER } from "../constants.js";
import { clusterImageRef } from "../images/catalog.js";
import { renderTemplate } from "../render.js";
import type { Cluster } from "../spec/schema.js";
import { splitList } from "../spec/cidr.js";
import { splitHostPort, httpsURL } from "../pki/names.js";
import type { KubeObject } from "./api.js";
import { signDetachedJws } from "./jws.js";
import { DEFAULT_TOKEN_GROUP } from "./token.js";
import { dnsServiceIP } from "./net.js";

export const CONFIG_MAP_NAME = "kubeprov-config";
export const CONFIG_MAP_KEY = "cluster.yaml";
export const CLUSTER_INFO = "cluster-info";
export const JWS_KEY_PREFIX = "jws-kubeconfig-";
export const CNI_CONFIG_FILE = "/etc/cni/net.d/10-kubeprov-bridge.conflist";

/** Every document of a rendered multi-document YAML template, as objects. */
export function objectsFromYaml(text: string, source: string): KubeObject[] {
  const out: KubeObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new Error(`${source}: ${doc.errors[0].message}`);
    const o = doc.toJS() as KubeObject | null;
    if (o) out.push(o);
  }
  return out;
}

function fromTemplate(name: string, values: Record<string, string | number | boolean>): KubeObject[] {
  return objectsFromYaml(renderTemplate(`addons/${name}`, values), `templates/addons/${name}`);
}

/** The URL nodes and in-cluster clients use for the API server: the controlPlaneEndpoint, else the first control plane. */
export function apiServerURL(cluster: Cluster, firstControlPlaneIP: string): string {
  const ep = cluster.spec.controlPlaneEndpoint;
  if (ep) {
    const { host, port } = splitHostPort(ep, PORT_APISERVER);
    return httpsURL(host, port);
  }
  return httpsURL(firstControlPlaneIP, PORT_APISERVER);
}

// ---- bootstrap ---------------------------------------------------------------------------------

export function clusterAdminsObjects(): KubeObject[] {
  return fromTemplate("cluster-admins.yaml", {});
}

export function bootstrapRbacObjects(): KubeObject[] {
  return fromTemplate("bootstrap-rbac.yaml", { tokenGroup: DEFAULT_TOKEN_GROUP });
}

export function clusterInfoRbacObjects(): KubeObject[] {
  return fromTemplate("cluster-info-rbac.yaml", {});
}

/**
 * The effective cluster file as the cluster keeps it: without what belongs to the operator's
 * machine (SSH key and known_hosts files, agent, passphrase and password variables, the local
 * artifact directory). Those differ from one workstation to the next and say nothing about the
 * cluster: kept, an apply from a second machine would rewrite the ConfigMap every time. Pure.
 */
export function storedClusterFile(cluster: Cluster): Cluster {
  const { identityFile: _key, knownHostsFile: _known, useAgent: _agent, passphraseEnv: _pp, passwordEnv: _pw, ...ssh } = cluster.spec.ssh;
  const { path: _dir, ...artifacts } = cluster.spec.artifacts;
  const hosts = cluster.spec.hosts.map((h) => {
    if (!h.ssh) return h;
    const { identityFile: _hostKey, ...hostSsh } = h.ssh;
    return { ...h, ssh: hostSsh };
  });
  return { ...cluster, spec: { ...cluster.spec, ssh, artifacts, hosts } } as Cluster;
}

/** kube-system/kubeprov-config holding the effective cluster file (storedClusterFile), and who may read it. */
export function uploadConfigObjects(cluster: Cluster): KubeObject[] {
  const cm: KubeObject = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: CONFIG_MAP_NAME, namespace: "kube-system" },
    data: { [CONFIG_MAP_KEY]: stringify(storedClusterFile(cluster)) },
  };
  return [cm, ...fromTemplate("upload-config-rbac.yaml", { configMap: CONFIG_MAP_NAME, tokenGroup: DEFAULT_TOKEN_GROUP })];
}

/** The kubeconfig published in cluster-info: the cluster's CA and API server, no user. */
export function clusterInfoKubeconfig(caPem: string, server: string): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "", cluster: { "certificate-authority-data": Buffer.from(caPem).toString("base64"), server } }],
    contexts: [],
    "current-context": "",
    preferences: {},
    users: [],
  });
}

/** kube-public/cluster-info with one detached JWS per signing token ("id.secret"). */
export function clusterInfoConfigMap(kubeconfig: string, signingTokens: string[]): KubeObject {
  const data: Record<string, string> = { kubeconfig };
  for (const t of [...signingTokens].sort()) data[`${JWS_KEY_PREFIX}${t.slice(0, 6)}`] = signDetachedJws(kubeconfig, t);
  return { apiVersion: "v1", kind: "ConfigMap", metadata: { name: CLUSTER_INFO, namespace: "kube-public" }, data };
}

// ---- addons ------------------------------------------------------------------------------------

/** What flannel's vxlan encapsulation adds to a packet (outer IPv4 + UDP + VXLAN + Ethernet headers). */
export const VXLAN_OVERHEAD = 50;

/**
 * The node's CNI configuration: a bridge with host-local addresses from its pod CIDR. With flannel
 * the bridge does not masquerade (flannel's --ip-masq does, for traffic leaving the pod network
 * only), so pods on other nodes see a pod's own address. `mtu` (flannel's vxlan backend: the node
 * interface's MTU less the encapsulation) keeps pods' packets small enough to be encapsulated.
 */
export function cniConfig(podCIDR: string, cni: Cluster["spec"]["networking"]["cni"] = "bridge", mtu?: number): string {
  const text = renderTemplate("addons/cni/10-kubeprov-bridge.conflist", { podCIDR, ipMasq: cni !== "flannel" });
  if (!mtu) return text;
  const conf = JSON.parse(text) as { plugins: Array<Record<string, unknown>> };
  conf.plugins[0]!["mtu"] = mtu;
  return JSON.stringify(conf, null, 2) + "\n";
}


/** flannel's ServiceAccount, RBAC, net-conf.json and DaemonSet (templates/addons/flannel.yaml). */
export function flannelObjects(cluster: Cluster, flannelVersion: string, apiServer?: string): KubeObject[] {
  const objs = fromTemplate("flannel.yaml", {
    image: clusterImageRef(cluster, "flannel", { ...NO_VERSIONS, flannelVersion }),
    podSubnet: cluster.spec.networking.podSubnet.split(",")[0].trim(),
    backend: cluster.spec.networking.flannelBackend,
  });
  if (apiServer) useApiServerDirectly(objs, "DaemonSet", apiServer);
  return objs;
}

/** Versions for naming one image whose own version is given (the others are not read). */
const NO_VERSIONS = { kubernetesVersion: "", etcdVersion: "", corednsVersion: "" };

export function kubeProxyImage(cluster: Cluster): string {
  return clusterImageRef(cluster, "kube-proxy", { ...NO_VERSIONS, kubernetesVersion: cluster.spec.kubernetesVersion });
}

export function corednsImage(cluster: Cluster): string {
  return clusterImageRef(cluster, "coredns", { ...NO_VERSIONS, corednsVersion: COREDNS_VERSION });
}

export interface KubeProxyOptions {
  /** The API server URL kube-proxy talks to. */
  server: string;
  /** Nodes are containers (docker driver): kube-proxy must not write /proc/sys. */
  inContainer: boolean;
}

export function kubeProxyConfig(cluster: Cluster, inContainer: boolean): string {
  return renderTemplate("addons/kube-proxy-config.yaml", {
    clusterCIDR: splitList(cluster.spec.networking.podSubnet).join(","),
    localhostNodePorts: !inContainer,
    conntrackMaxPerCore: inContainer ? 0 : 32768,
    conntrackMin: inContainer ? 0 : 131072,
    // 0s: leave the kernel's timeouts alone (a node container cannot write them).
    conntrackTcpEstablishedTimeout: inContainer ? "0s" : "24h0m0s",
    conntrackTcpCloseWaitTimeout: inContainer ? "0s" : "1h0m0s",
  });
}

export function kubeProxyObjects(cluster: Cluster, opts: KubeProxyOptions): KubeObject[] {
  const objs = fromTemplate("kube-proxy.yaml", { image: kubeProxyImage(cluster) });
  const cm = objs.find((o) => o.kind === "ConfigMap")!;
  cm.data = {
    "config.conf": kubeProxyConfig(cluster, opts.inContainer),
    "kubeconfig.conf": renderTemplate("addons/kube-proxy-kubeconfig.yaml", { server: opts.server }),
  };
  return objs;
}

export interface CorednsOptions {
  /** The node has a non-loopback upstream nameserver: forward other names to it. */
  upstream: boolean;
  replicas?: number;
  /** The API server's URL (the endpoint): CoreDNS talks to it directly, not through the Service. */
  apiServer?: string;
}

export function corefile(cluster: Cluster, upstream: boolean): string {
  return renderTemplate(upstream ? "addons/Corefile" : "addons/Corefile.cluster-only", { dnsDomain: cluster.spec.networking.dnsDomain });
}

export function corednsObjects(cluster: Cluster, opts: CorednsOptions): KubeObject[] {
  const objs = fromTemplate("coredns.yaml", {
    image: corednsImage(cluster),
    replicas: opts.replicas ?? 1,
    dnsIP: dnsServiceIP(cluster.spec.networking.serviceSubnet),
  });
  objs.find((o) => o.kind === "ConfigMap")!.data = { Corefile: corefile(cluster, opts.upstream) };
  if (opts.apiServer) useApiServerDirectly(objs, "Deployment", opts.apiServer);
  return objs;
}

/**
 * Points the pods of a workload at the API server's own address (the endpoint) instead of the
 * `kubernetes` Service, as kube-proxy is: the network add-on and CoreDNS start before kube-proxy
 * has translated the Service address (and, on a restarted node, before flannel masquerades pod
 * traffic), and a first connection to an address nobody answers costs client-go a 30 s dial time-out.
 * The container's own env wins over the Service variables the kubelet injects.
 */
export function useApiServerDirectly(objs: KubeObject[], kind: string, server: string): void {
  const url = new URL(server);
  const env = [
    { name: "KUBERNETES_SERVICE_HOST", value: url.hostname.replace(/^\[|\]$/g, "") },
    { name: "KUBERNETES_SERVICE_PORT", value: url.port || "443" },
  ];
  const workload = objs.find((o) => o.kind === kind) as { spec?: { template?: { spec?: { containers?: Array<{ env?: unknown[] }> } } } } | undefined;
  for (const c of workload?.spec?.template?.spec?.containers ?? []) c.env = [...(c.env ?? []), ...env];
}

/** The storage add-on: local-path-provisioner, its RBAC and configuration, the default StorageClass. */
export function storageObjects(cluster: Cluster, opts: { image: string; apiServer?: string }): KubeObject[] {
  const hostPath = cluster.spec.addons.storage.hostPath;
  const objs = fromTemplate("storage.yaml", { image: opts.image, hostPath, provisionerName: LOCAL_PATH_PROVISIONER_NAME });
  const cm = objs.find((o) => o.kind === "ConfigMap")!;
  // Every node, listed or not, keeps its volumes under hostPath.
  const config = { nodePathMap: [{ node: "DEFAULT_PATH_FOR_NON_LISTED_NODES", paths: [hostPath] }] };
  cm.data = { "config.json": JSON.stringify(config), ...(cm.data as Record<string, string>) };
  if (opts.apiServer) useApiServerDirectly(objs, "Deployment", opts.apiServer);
  return objs;
}

/** The port metrics-server serves on inside its pod. */
export const METRICS_SERVER_PORT = 10250;

/** The metrics-server add-on: its Deployment, Service, RBAC and the APIService v1beta1.metrics.k8s.io. */
export function metricsServerObjects(opts: { image: string; apiServer?: string; metricResolution?: string }): KubeObject[] {
  const objs = fromTemplate("metrics-server.yaml", { image: opts.image, securePort: METRICS_SERVER_PORT, metricResolution: opts.metricResolution ?? "15s" });
  if (opts.apiServer) useApiServerDirectly(objs, "Deployment", opts.apiServer);
  return objs;
}

/** The nameservers of a resolv.conf. */
export function nameservers(resolvConf: string): string[] {
  return resolvConf
    .split("\n")
    .map((l) => /^\s*nameserver\s+(\S+)/.exec(l)?.[1])
    .filter((x): x is string => !!x);
}

/** A nameserver a pod can reach: not loopback (127.0.0.0/8, ::1). */
export function isUpstreamNameserver(ns: string): boolean {
  return !(ns.startsWith("127.") || ns === "::1" || ns === "0:0:0:0:0:0:0:1");
}
