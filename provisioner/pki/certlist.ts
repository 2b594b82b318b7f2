// THE certificate table: every CA, leaf certificate, key pair and kubeconfig kubeprov makes, as data,
// like kubeadm's phases/certs/certlist.go and phases/kubeconfig. Names, subjects, SANs, usages,
// file names and server URLs are decided here and nowhere else; generation, checking, expiry
// reports and renewal all walk these lists.
import { posix } from "node:path";
import { KUBERNETES_DIR, PKI_DIR, PORT_APISERVER } from "../constants.js";
import { ConfigError } from "../errors.js";
import type { Cluster } from "../spec/schema.js";
import { canonicalIP, httpsURL, indexedIP, isDnsName, splitHostPort } from "./names.js";

/** Everything a certificate's contents may depend on: the cluster and the node it is made for. */
export interface PkiContext {
  /** Cluster name used inside kubeconfigs (clusters[].name, contexts). */
  clusterName: string;
  dnsDomain: string;
  serviceSubnet: string;
  /** host:port of controlPlaneEndpoint, when set. */
  controlPlaneEndpoint?: string;
  certSANs: string[];
  virtualIP?: string;
  node: { name: string; ip: string };
  /** The node is the first control plane (it alone gets super-admin.conf, as with kubeadm init). */
  firstControlPlane: boolean;
  /** Where the files go on the node. */
  certDir: string;
  kubeconfigDir: string;
  keySize: 2048 | 3072 | 4096;
  caValidityDays: number;
  certificateValidityDays: number;
  renewBeforeDays: number;
}

export type CAName = "ca" | "front-proxy-ca" | "etcd-ca";
export type ExtKeyUsage = "serverAuth" | "clientAuth";

export interface SubjectAltNames {
  dns: string[];
  ips: string[];
}

export interface CASpec {
  kind: "ca";
  name: CAName;
  /** File base name under the cert dir (base.crt / base.key). */
  baseName: string;
  commonName: string;
  description: string;
}

export interface LeafSpec {
  kind: "leaf";
  name: string;
  baseName: string;
  ca: CAName;
  commonName: (c: PkiContext) => string;
  organizations: string[];
  extKeyUsages: ExtKeyUsage[];
  /** No function: the certificate has no SANs. */
  altNames?: (c: PkiContext) => SubjectAltNames;
  description: string;
  /** Components that read this file (restarted when it is renewed on a running control plane). */
  usedBy: string[];
}

export interface KeyPairSpec {
  kind: "keypair";
  name: "sa";
  baseName: "sa";
  description: string;
}

export interface KubeconfigSpec {
  kind: "kubeconfig";
  /** The file name under the kubeconfig dir, also the name used on the command line. */
  name: string;
  ca: "ca";
  commonName: (c: PkiContext) => string;
  organizations: string[];
  /** The API server URL written in the file, as kubeadm chooses it. */
  server: (c: PkiContext) => string;
  /** Whether this node gets the file. */
  onNode: (c: PkiContext) => boolean;
  description: string;
  usedBy: string[];
}

// Checked against `kubeadm init phase certs all` / `kubeconfig all` of kubeadm v1.37.2 on this machine:
// subjects, SANs (CAs carry their CN as a DNS SAN), key usages, extended key usages, server URLs.
// kubeadm's groups (constants.go): kubeadm:cluster-admins is bound to cluster-admin by an RBAC
// ClusterRoleBinding kubeadm creates; system:masters bypasses RBAC (break-glass super-admin only).
export const GROUP_CLUSTER_ADMINS = "kubeadm:cluster-admins";
export const GROUP_SYSTEM_MASTERS = "system:masters";
export const GROUP_NODES = "system:nodes";

/** Key usages of every leaf (kubeadm: digital signature + key encipherment for RSA keys). */
export const LEAF_KEY_USAGES = ["digitalSignature", "keyEncipherment"] as const;
/** Key usages of every CA. */
export const CA_KEY_USAGES = ["digitalSignature", "keyEncipherment", "keyCertSign"] as const;
/** NotBefore is set this far in the past, as kubeadm's CertificateBackdate, to tolerate clock skew. */
export const CERTIFICATE_BACKDATE_MS = 5 * 60_000;

export const CAS: readonly CASpec[] = [
  { kind: "ca", name: "ca", baseName: "ca", commonName: "kubernetes", description: "Kubernetes CA (API server, kubelets, clients)" },
  { kind: "ca", name: "front-proxy-ca", baseName: "front-proxy-ca", commonName: "front-proxy-ca", description: "front proxy CA (aggregated APIs)" },
  { kind: "ca", name: "etcd-ca", baseName: "etcd/ca", commonName: "etcd-ca", description: "etcd CA" },
];

const etcdAltNames = (c: PkiContext): SubjectAltNames => ({ dns: [c.node.name, "localhost"], ips: [c.node.ip, "127.0.0.1", "::1"] });

export const LEAVES: readonly LeafSpec[] = [
  {
    kind: "leaf",
    name: "apiserver",
    baseName: "apiserver",
    ca: "ca",
    commonName: () => "kube-apiserver",
    organizations: [],
    extKeyUsages: ["serverAuth"],
    altNames: apiServerAltNames,
    description: "API server serving certificate",
    usedBy: ["kube-apiserver"],
  },
  {
    kind: "leaf",
    name: "apiserver-kubelet-client",
    baseName: "apiserver-kubelet-client",
    ca: "ca",
    commonName: () => "kube-apiserver-kubelet-client",
    // No O: kubeadm v1.37.2 (checked against the binary) issues it with CN only.
    organizations: [],
    extKeyUsages: ["clientAuth"],
    description: "API server client certificate for kubelets",
    usedBy: ["kube-apiserver"],
  },
  {
    kind: "leaf",
    name: "front-proxy-client",
    baseName: "front-proxy-client",
    ca: "front-proxy-ca",
    commonName: () => "front-proxy-client",
    organizations: [],
    extKeyUsages: ["clientAuth"],
    description: "API server client certificate for aggregated API servers",
    usedBy: ["kube-apiserver"],
  },
  {
    kind: "leaf",
    name: "etcd-server",
    baseName: "etcd/server",
    ca: "etcd-ca",
    commonName: (c) => c.node.name,
    organizations: [],
    // etcd needs clientAuth on its serving certificate too (kubeadm does the same).
    extKeyUsages: ["serverAuth", "clientAuth"],
    altNames: etcdAltNames,
    description: "etcd serving certificate",
    usedBy: ["etcd"],
  },
  {
    kind: "leaf",
    name: "etcd-peer",
    baseName: "etcd/peer",
    ca: "etcd-ca",
    commonName: (c) => c.node.name,
    organizations: [],
    extKeyUsages: ["serverAuth", "clientAuth"],
    altNames: etcdAltNames,
    description: "etcd peer certificate",
    usedBy: ["etcd"],
  },
  {
    kind: "leaf",
    name: "etcd-healthcheck-client",
    baseName: "etcd/healthcheck-client",
    ca: "etcd-ca",
    commonName: () => "kube-etcd-healthcheck-client",
    organizations: [],
    extKeyUsages: ["clientAuth"],
    description: "etcd client certificate for health checks",
    usedBy: [],
  },
  {
    kind: "leaf",
    name: "apiserver-etcd-client",
    baseName: "apiserver-etcd-client",
    ca: "etcd-ca",
    commonName: () => "kube-apiserver-etcd-client",
    organizations: [],
    extKeyUsages: ["clientAuth"],
    description: "API server client certificate for etcd",
    usedBy: ["kube-apiserver"],
  },
];

export const SERVICE_ACCOUNT_KEY: KeyPairSpec = {
  kind: "keypair",
  name: "sa",
  baseName: "sa",
  description: "service account token signing key (sa.key, sa.pub)",
};

const endpointURL = (c: PkiContext): string => {
  if (c.controlPlaneEndpoint) {
    const { host, port } = splitHostPort(c.controlPlaneEndpoint, PORT_APISERVER);
    return httpsURL(host, port);
  }
  return localURL(c);
};
const localURL = (c: PkiContext): string => httpsURL(c.node.ip, PORT_APISERVER);

export const KUBECONFIGS: readonly KubeconfigSpec[] = [
  {
    kind: "kubeconfig",
    name: "admin.conf",
    ca: "ca",
    commonName: () => "kubernetes-admin",
    organizations: [GROUP_CLUSTER_ADMINS],
    server: endpointURL,
    onNode: () => true,
    description: "cluster administrator (RBAC-bound group kubeadm:cluster-admins)",
    usedBy: [],
  },
  {
    kind: "kubeconfig",
    name: "super-admin.conf",
    ca: "ca",
    commonName: () => "kubernetes-super-admin",
    organizations: [GROUP_SYSTEM_MASTERS],
    server: endpointURL,
    onNode: (c) => c.firstControlPlane,
    description: "break-glass super user (system:masters, bypasses RBAC); first control plane only",
    usedBy: [],
  },
  {
    kind: "kubeconfig",
    name: "controller-manager.conf",
    ca: "ca",
    commonName: () => "system:kube-controller-manager",
    organizations: [],
    server: localURL,
    onNode: () => true,
    description: "kube-controller-manager, talking to the local API server",
    usedBy: ["kube-controller-manager"],
  },
  {
    kind: "kubeconfig",
    name: "scheduler.conf",
    ca: "ca",
    commonName: () => "system:kube-scheduler",
    organizations: [],
    server: localURL,
    onNode: () => true,
    description: "kube-scheduler, talking to the local API server",
    usedBy: ["kube-scheduler"],
  },
  {
    kind: "kubeconfig",
    name: "kubelet.conf",
    ca: "ca",
    commonName: (c) => `system:node:${c.node.name}`,
    organizations: [GROUP_NODES],
    // kubeadm v1.37.2 points a control plane's kubelet at its local API server (checked against the binary).
    server: localURL,
    onNode: () => true,
    description: "the node's kubelet",
    usedBy: ["kubelet"],
  },
];

/** The API server's SANs, in kubeadm's order; extra SANs from the cluster file last. Duplicates removed. */
export function apiServerAltNames(c: PkiContext): SubjectAltNames {
  const dns = [c.node.name, "kubernetes", "kubernetes.default", "kubernetes.default.svc", `kubernetes.default.svc.${c.dnsDomain}`];
  const ips = [serviceIP(c), c.node.ip];
  const add = (value: string) => {
    if (canonicalIP(value)) ips.push(value);
    else dns.push(value.toLowerCase());
  };
  if (c.controlPlaneEndpoint) add(splitHostPort(c.controlPlaneEndpoint, PORT_APISERVER).host);
  for (const san of c.certSANs) add(san);
  if (c.virtualIP) add(c.virtualIP);
  return dedupe({ dns, ips });
}

function serviceIP(c: PkiContext): string {
  const first = c.serviceSubnet.split(",")[0]!;
  return indexedIP(first, 1);
}

export function dedupe(s: SubjectAltNames): SubjectAltNames {
  const seenIP = new Set<string>();
  const ips: string[] = [];
  for (const ip of s.ips) {
    const k = canonicalIP(ip) ?? ip;
    if (!seenIP.has(k)) {
      seenIP.add(k);
      ips.push(k);
    }
  }
  return { dns: [...new Set(s.dns)], ips };
}

/** The issuing CA's spec. */
export function caSpec(name: CAName): CASpec {
  return CAS.find((c) => c.name === name)!;
}

export function certPath(c: Pick<PkiContext, "certDir">, baseName: string, ext: "crt" | "key" | "pub"): string {
  return posix.join(c.certDir, `${baseName}.${ext}`);
}

export function kubeconfigPath(c: Pick<PkiContext, "kubeconfigDir">, name: string): string {
  return posix.join(c.kubeconfigDir, name);
}

/** Names accepted by `certs renew` (leaves and kubeconfigs; CAs are never renewed by kubeprov). */
export function renewableNames(): string[] {
  return [...LEAVES.map((l) => l.name), ...KUBECONFIGS.map((k) => k.name)];
}

export interface PkiContextOptions {
  certDir?: string;
  kubeconfigDir?: string;
  /** Source name for messages (the cluster file). */
  source?: string;
}

/**
 * The context for one node of a cluster. The node must be a host of the cluster file; its IP is
 * internalAddress, else address, and must be an IP address (it goes into SANs and server URLs).
 * Bad values are ConfigErrors naming the field.
 */
export function pkiContext(cluster: Cluster, nodeName: string | undefined, opts: PkiContextOptions = {}): PkiContext {
  const spec = cluster.spec;
  const src = opts.source ? `${opts.source}: ` : "";
  const controlPlanes = spec.hosts.filter((h) => h.roles.includes("control-plane"));
  const name = nodeName ?? controlPlanes[0]?.name;
  if (!name) throw new ConfigError(`${src}spec.hosts: no host has the control-plane role`);
  const index = spec.hosts.findIndex((h) => h.name === name);
  if (index < 0) throw new ConfigError(`${src}no host named ${JSON.stringify(name)} in spec.hosts (hosts: ${spec.hosts.map((h) => h.name).join(", ")})`);
  const host = spec.hosts[index]!;
  const ip = host.internalAddress ?? host.address;
  const problems: string[] = [];
  if (!canonicalIP(ip)) {
    const field = host.internalAddress !== undefined ? "internalAddress" : "address";
    problems.push(`${src}spec.hosts[${index}].${field}: ${JSON.stringify(ip)} is not an IP address; certificates need the node's IP (set internalAddress)`);
  }
  spec.controlPlane.certSANs.forEach((san, i) => {
    if (!canonicalIP(san) && !isDnsName(san.toLowerCase())) {
      problems.push(`${src}spec.controlPlane.certSANs[${i}]: ${JSON.stringify(san)} is neither an IP address nor a DNS name`);
    }
  });
  if (spec.controlPlaneEndpoint !== undefined) {
    try {
      const { host: h, port } = splitHostPort(spec.controlPlaneEndpoint, PORT_APISERVER);
      if ((!canonicalIP(h) && !isDnsName(h.toLowerCase())) || port < 1 || port > 65535) throw new Error("bad");
    } catch {
      problems.push(`${src}spec.controlPlaneEndpoint: ${JSON.stringify(spec.controlPlaneEndpoint)} is not host:port`);
    }
  }
  if (spec.ha.virtualIP !== undefined && !canonicalIP(spec.ha.virtualIP)) {
    problems.push(`${src}spec.ha.virtualIP: ${JSON.stringify(spec.ha.virtualIP)} is not an IP address`);
  }
  try {
    indexedIP(spec.networking.serviceSubnet.split(",")[0]!, 1);
  } catch (e) {
    problems.push(`${src}spec.networking.serviceSubnet: ${(e as Error).message}`);
  }
  if (problems.length) throw new ConfigError(problems[0]!, problems);
  return {
    clusterName: cluster.metadata.name,
    dnsDomain: spec.networking.dnsDomain,
    serviceSubnet: spec.networking.serviceSubnet,
    controlPlaneEndpoint: spec.controlPlaneEndpoint,
    certSANs: spec.controlPlane.certSANs,
    virtualIP: spec.ha.virtualIP,
    node: { name: host.name, ip: canonicalIP(ip)! },
    firstControlPlane: controlPlanes[0]?.name === host.name,
    certDir: opts.certDir ?? PKI_DIR,
    kubeconfigDir: opts.kubeconfigDir ?? KUBERNETES_DIR,
    keySize: spec.pki.keySize,
    caValidityDays: spec.pki.caValidityDays,
    certificateValidityDays: spec.pki.certificateValidityDays,
    renewBeforeDays: spec.pki.renewBeforeDays,
  };
}
