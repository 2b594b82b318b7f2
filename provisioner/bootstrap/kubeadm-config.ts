// What kubeadm's upload-config phase keeps in a cluster, written by kubeprov so that the real
// `kubeadm join` (worker or control plane) and other tools that read kubeadm's configuration find
// it: ConfigMap kube-system/kubeadm-config (key ClusterConfiguration, kubeadm.k8s.io/v1beta4),
// ConfigMap kube-system/kubelet-config (key kubelet: the KubeletConfiguration shared by every node)
// and the Roles that let joining nodes (bootstrap token group) and nodes read them, with kubeadm's
// names. kubeprov's own kubeprov-config (the cluster file) stays the source kubeprov reads; these
// are derived from the same cluster file. Pure: no API calls here.
import { stringify, parse } from "yaml";
import { ETCD_DATA_DIR, IMAGE_REGISTRY, PKI_DIR } from "../constants.js";
import { renderTemplate } from "../render.js";
import type { Cluster } from "../spec/schema.js";
import { CONTROLLER_MANAGER_RATE_LIMIT, etcdHostSpecs, etcdServers } from "../tasks/controlplane-flags.js";
import type { KubeObject } from "./api.js";
import { joinEndpoint } from "./joincmd.js";
import { objectsFromYaml } from "./manifests.js";
import { DEFAULT_TOKEN_GROUP } from "./token.js";

export const KUBEADM_CONFIG_MAP = "kubeadm-config";
export const CLUSTER_CONFIGURATION_KEY = "ClusterConfiguration";
export const KUBELET_CONFIG_MAP = "kubelet-config";
export const KUBELET_CONFIG_KEY = "kubelet";
export const KUBEADM_API_VERSION = "kubeadm.k8s.io/v1beta4";
/** kubeadm's default for the size of each node's pod CIDR (IPv4): only a different value is written. */
const KUBEADM_NODE_CIDR_MASK_SIZE = 24;

type Arg = { name: string; value: string };

/** spec.controlPlane.extraArgs.<key> as kubeadm v1beta4's list of {name, value}, sorted by name. */
function extraArgs(map: Record<string, string> | undefined): Arg[] {
  return Object.entries(map ?? {})
    .map(([k, v]) => ({ name: k, value: v }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

/** `{extraArgs: [...]}` when there are any, else `{}` (kubeadm writes empty components as `{}`). */
function withArgs(args: Arg[], rest: Record<string, unknown> = {}): Record<string, unknown> {
  return { ...rest, ...(args.length ? { extraArgs: args } : {}) };
}

export interface ClusterConfigurationOptions {
  /** The first control plane's node address (the endpoint when the file names none). */
  firstControlPlaneIP: string;
  /** The etcd image kubeprov runs (registry.k8s.io/etcd:<tag>), so a kubeadm-joined member runs the same one. */
  etcdImage?: string;
}

/**
 * kubeadm's ClusterConfiguration for this cluster. Component flags are kubeprov's (tasks/controlplane-flags.ts);
 * only those a kubeadm-made control plane would otherwise get differently are written: the cluster
 * file's extraArgs, node-cidr-mask-size when it is not kubeadm's default, and the controller
 * manager's client rate limit. Pure.
 */
export function clusterConfiguration(cluster: Cluster, opts: ClusterConfigurationOptions): Record<string, unknown> {
  const spec = cluster.spec;
  const args = spec.controlPlane.extraArgs;
  const external = etcdHostSpecs(cluster);
  let etcd: Record<string, unknown>;
  if (external.length) {
    etcd = {
      external: {
        endpoints: etcdServers(cluster).split(","),
        caFile: `${PKI_DIR}/etcd/ca.crt`,
        certFile: `${PKI_DIR}/apiserver-etcd-client.crt`,
        keyFile: `${PKI_DIR}/apiserver-etcd-client.key`,
      },
    };
  } else {
    const image = opts.etcdImage ? /^(.*)\/etcd:([^/:]+)$/.exec(opts.etcdImage) : null;
    etcd = { local: withArgs(extraArgs(args.etcd), { dataDir: ETCD_DATA_DIR, ...(image ? { imageRepository: image[1], imageTag: image[2] } : {}) }) };
  }
  const cmArgs = extraArgs(args.controllerManager);
  if (spec.networking.nodeCidrMaskSize !== KUBEADM_NODE_CIDR_MASK_SIZE && !cmArgs.some((a) => a.name === "node-cidr-mask-size")) {
    cmArgs.push({ name: "node-cidr-mask-size", value: String(spec.networking.nodeCidrMaskSize) });
  }
  for (const [name, value] of CONTROLLER_MANAGER_RATE_LIMIT) if (!cmArgs.some((a) => a.name === name)) cmArgs.push({ name, value });
  cmArgs.sort((a, b) => a.name.localeCompare(b.name));
  return {
    apiVersion: KUBEADM_API_VERSION,
    kind: "ClusterConfiguration",
    clusterName: cluster.metadata.name,
    kubernetesVersion: spec.kubernetesVersion,
    // The file's endpoint, else the first control plane's address and API port: the one kubeprov
    // publishes in cluster-info and gives every node (the join lines' endpoint). kubeadm refuses to
    // join a control plane to a cluster without one.
    controlPlaneEndpoint: joinEndpoint(cluster, opts.firstControlPlaneIP),
    certificatesDir: PKI_DIR,
    // spec.images.repository names every image the same way kubeadm's imageRepository does.
    imageRepository: spec.images.repository ?? IMAGE_REGISTRY,
    encryptionAlgorithm: `RSA-${spec.pki.keySize}`,
    certificateValidityPeriod: `${spec.pki.certificateValidityDays * 24}h0m0s`,
    caCertificateValidityPeriod: `${spec.pki.caValidityDays * 24}h0m0s`,
    networking: {
      podSubnet: spec.networking.podSubnet,
      serviceSubnet: spec.networking.serviceSubnet,
      dnsDomain: spec.networking.dnsDomain,
    },
    etcd,
    apiServer: withArgs(extraArgs(args.apiserver), spec.controlPlane.certSANs.length ? { certSANs: spec.controlPlane.certSANs } : {}),
    controllerManager: withArgs(cmArgs),
    scheduler: withArgs(extraArgs(args.scheduler)),
  };
}

/**
 * Fields of kubeprov's kubelet configuration that belong to one node and so stay out of the
 * shared kubelet-config (kubeadm copies that ConfigMap to every node that joins):
 * - cgroupRoot: a node container's own cgroup root, named after the node (node containers share
 *   the host's cgroups, templates/kubelet/cgroup-root.sh); two nodes with the same root would
 *   manage each other's pods. A kubeadm-joined node container gives its own with a kubeadm patch
 *   (target kubeletconfiguration).
 * - containerRuntimeEndpoint: a host's criSocket may differ from the cluster's; kubeadm sets it
 *   per node from nodeRegistration.criSocket (its instance configuration or a kubelet flag).
 * What depends on the kind of machine (failSwapOn, failCgroupV1) is the first control plane's:
 * a cluster's machines are alike as a rule, and a different one patches them as above.
 */
export const PER_NODE_KUBELET_FIELDS = ["cgroupRoot", "containerRuntimeEndpoint"] as const;

/** The shared KubeletConfiguration: the one kubeprov writes on a node (the first control plane) minus per-node fields. Pure. */
export function sharedKubeletConfig(nodeConfigYaml: string): string {
  const cfg = parse(nodeConfigYaml) as Record<string, unknown>;
  for (const f of PER_NODE_KUBELET_FIELDS) delete cfg[f];
  return stringify(cfg);
}

/** ConfigMap kube-system/kubeadm-config with the ClusterConfiguration, and kubeadm's Role and RoleBinding for it. */
export function kubeadmConfigObjects(cluster: Cluster, opts: ClusterConfigurationOptions): KubeObject[] {
  const cm: KubeObject = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: KUBEADM_CONFIG_MAP, namespace: "kube-system" },
    data: { [CLUSTER_CONFIGURATION_KEY]: stringify(clusterConfiguration(cluster, opts)) },
  };
  return [cm, ...rbac("kubeadm:nodes-kubeadm-config", KUBEADM_CONFIG_MAP)];
}

/** ConfigMap kube-system/kubelet-config (the shared KubeletConfiguration), and kubeadm's Role and RoleBinding for it. */
export function kubeletConfigObjects(nodeConfigYaml: string): KubeObject[] {
  const cm: KubeObject = {
    apiVersion: "v1",
    kind: "ConfigMap",
    metadata: { name: KUBELET_CONFIG_MAP, namespace: "kube-system" },
    data: { [KUBELET_CONFIG_KEY]: sharedKubeletConfig(nodeConfigYaml) },
  };
  return [cm, ...rbac("kubeadm:kubelet-config", KUBELET_CONFIG_MAP)];
}

function rbac(role: string, configMap: string): KubeObject[] {
  const text = renderTemplate("addons/kubeadm-config-rbac.yaml", { role, configMap, tokenGroup: DEFAULT_TOKEN_GROUP });
  return objectsFromYaml(text, "templates/addons/kubeadm-config-rbac.yaml");
}
