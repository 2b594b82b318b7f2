// One typed table of flags per control-plane component, the same for both ways of running it
// (static pods and systemd units), like kubeadm's phases/controlplane/manifests.go. Pure.
// spec.controlPlane.extraArgs.<component> override or add flags ("--name=value" as kubeadm does).
import type { Cluster } from "../spec/schema.js";
import type { Host } from "../engine/task.js";
import {
  ETCD_DATA_DIR,
  KUBERNETES_DIR,
  PKI_DIR,
  PORT_APISERVER,
  PORT_ETCD_CLIENT,
  PORT_ETCD_PEER,
} from "../constants.js";

export type ComponentName = "etcd" | "kube-apiserver" | "kube-controller-manager" | "kube-scheduler";
export const CONTROL_PLANE_COMPONENTS: ComponentName[] = ["kube-apiserver", "kube-controller-manager", "kube-scheduler"];
export const ALL_COMPONENTS: ComponentName[] = ["etcd", ...CONTROL_PLANE_COMPONENTS];

/** The key of spec.controlPlane.extraArgs for each component. */
export const EXTRA_ARGS_KEY: Record<ComponentName, "etcd" | "apiserver" | "controllerManager" | "scheduler"> = {
  etcd: "etcd",
  "kube-apiserver": "apiserver",
  "kube-controller-manager": "controllerManager",
  "kube-scheduler": "scheduler",
};

/** Ordered flag map: name (without --) -> value. */
export type Flags = Map<string, string>;

const pki = (f: string) => `${PKI_DIR}/${f}`;
const conf = (f: string) => `${KUBERNETES_DIR}/${f}`;
export const ETCD_METRICS_PORT = 2381;

/** Brackets for IPv6 in URLs. */
export function urlHost(ip: string): string {
  return ip.includes(":") ? `[${ip}]` : ip;
}

export function controlPlaneHosts(cluster: Cluster): Cluster["spec"]["hosts"] {
  return cluster.spec.hosts.filter((h) => h.roles.includes("control-plane"));
}

/** The hosts of an external etcd cluster (role etcd), in file order; empty with stacked etcd. */
export function etcdHostSpecs(cluster: Cluster): Cluster["spec"]["hosts"] {
  return cluster.spec.hosts.filter((h) => h.roles.includes("etcd"));
}

/** The client URLs kube-apiserver uses: the local member (stacked), or every external member. */
export function etcdServers(cluster: Cluster): string {
  const external = etcdHostSpecs(cluster);
  if (!external.length) return `https://127.0.0.1:${PORT_ETCD_CLIENT}`;
  return external.map((h) => `https://${urlHost(nodeIPOf(h))}:${PORT_ETCD_CLIENT}`).join(",");
}

function nodeIPOf(h: Cluster["spec"]["hosts"][number]): string {
  return h.internalAddress ?? h.address;
}

export function etcdFlags(cluster: Cluster, host: Host): Flags {
  const ip = host.nodeIP;
  const external = etcdHostSpecs(cluster);
  const cps = controlPlaneHosts(cluster);
  // Stacked: the first control plane starts the cluster alone. Each later one joins the members
  // before it in file order (they join one at a time, in that order), so its --initial-cluster is
  // exactly the member list etcd holds once it was added, and stays the same on every later run.
  // External: the etcd hosts start together as one new cluster of all of them (a static bootstrap).
  const index = external.length ? 0 : Math.max(0, cps.findIndex((h) => h.name === host.name));
  const initial = external.length ? external : cps.length ? cps.slice(0, index + 1) : [];
  return new Map([
    ["name", host.name],
    ["data-dir", ETCD_DATA_DIR],
    ["advertise-client-urls", `https://${urlHost(ip)}:${PORT_ETCD_CLIENT}`],
    ["listen-client-urls", `https://127.0.0.1:${PORT_ETCD_CLIENT},https://${urlHost(ip)}:${PORT_ETCD_CLIENT}`],
    ["listen-metrics-urls", `http://127.0.0.1:${ETCD_METRICS_PORT}`],
    ["initial-advertise-peer-urls", `https://${urlHost(ip)}:${PORT_ETCD_PEER}`],
    ["listen-peer-urls", `https://${urlHost(ip)}:${PORT_ETCD_PEER}`],
    ["initial-cluster", initial.map((h) => `${h.name}=https://${urlHost(h.name === host.name ? ip : nodeIPOf(h))}:${PORT_ETCD_PEER}`).join(",")],
    ["initial-cluster-state", index === 0 ? "new" : "existing"],
    ["cert-file", pki("etcd/server.crt")],
    ["key-file", pki("etcd/server.key")],
    ["trusted-ca-file", pki("etcd/ca.crt")],
    ["client-cert-auth", "true"],
    ["peer-cert-file", pki("etcd/peer.crt")],
    ["peer-key-file", pki("etcd/peer.key")],
    ["peer-trusted-ca-file", pki("etcd/ca.crt")],
    ["peer-client-cert-auth", "true"],
    ["snapshot-count", "10000"],
    ["watch-progress-notify-interval", "5s"],
    ["feature-gates", "InitialCorruptCheck=true"],
  ]);
}

export function apiserverFlags(cluster: Cluster, host: Host): Flags {
  const net = cluster.spec.networking;
  return new Map([
    ["advertise-address", host.nodeIP],
    ["secure-port", String(PORT_APISERVER)],
    ["allow-privileged", "true"],
    ["authorization-mode", "Node,RBAC"],
    ["enable-admission-plugins", "NodeRestriction"],
    ["enable-bootstrap-token-auth", "true"],
    ["client-ca-file", pki("ca.crt")],
    ["tls-cert-file", pki("apiserver.crt")],
    ["tls-private-key-file", pki("apiserver.key")],
    ["etcd-servers", etcdServers(cluster)],
    ["etcd-cafile", pki("etcd/ca.crt")],
    ["etcd-certfile", pki("apiserver-etcd-client.crt")],
    ["etcd-keyfile", pki("apiserver-etcd-client.key")],
    ["kubelet-client-certificate", pki("apiserver-kubelet-client.crt")],
    ["kubelet-client-key", pki("apiserver-kubelet-client.key")],
    ["kubelet-preferred-address-types", "InternalIP,ExternalIP,Hostname"],
    ["proxy-client-cert-file", pki("front-proxy-client.crt")],
    ["proxy-client-key-file", pki("front-proxy-client.key")],
    ["requestheader-allowed-names", "front-proxy-client"],
    ["requestheader-client-ca-file", pki("front-proxy-ca.crt")],
    ["requestheader-extra-headers-prefix", "X-Remote-Extra-"],
    ["requestheader-group-headers", "X-Remote-Group"],
    ["requestheader-username-headers", "X-Remote-User"],
    ["service-account-issuer", `https://kubernetes.default.svc.${net.dnsDomain}`],
    ["service-account-key-file", pki("sa.pub")],
    ["service-account-signing-key-file", pki("sa.key")],
    ["service-cluster-ip-range", net.serviceSubnet],
  ]);
}

export function controllerManagerFlags(cluster: Cluster): Flags {
  const net = cluster.spec.networking;
  return new Map([
    ["kubeconfig", conf("controller-manager.conf")],
    ["authentication-kubeconfig", conf("controller-manager.conf")],
    ["authorization-kubeconfig", conf("controller-manager.conf")],
    ["bind-address", "127.0.0.1"],
    ["client-ca-file", pki("ca.crt")],
    ["requestheader-client-ca-file", pki("front-proxy-ca.crt")],
    ["cluster-name", cluster.metadata.name],
    ["allocate-node-cidrs", "true"],
    ["cluster-cidr", net.podSubnet],
    ["node-cidr-mask-size", String(net.nodeCidrMaskSize)],
    ["service-cluster-ip-range", net.serviceSubnet],
    ["cluster-signing-cert-file", pki("ca.crt")],
    ["cluster-signing-key-file", pki("ca.key")],
    ["root-ca-file", pki("ca.crt")],
    ["service-account-private-key-file", pki("sa.key")],
    ["use-service-account-credentials", "true"],
    ["controllers", "*,bootstrapsigner,tokencleaner"],
    ["leader-elect", "true"],
    // Its own client-side rate limit (default 20 requests/s, bursts of 30): at start-up every
    // controller fetches its ServiceAccount and a token before it starts, and under that limit a
    // new cluster's controllers (and so its first CoreDNS and kube-proxy pods) came about 5.5 s
    // after the controller manager became leader here, against under 2 s with this. The API
    // server's own protection (API Priority and Fairness) is unchanged.
    ...CONTROLLER_MANAGER_RATE_LIMIT,
  ]);
}

/** kube-controller-manager's client rate limit (requests per second and burst), also given to kubeadm's ClusterConfiguration. */
export const CONTROLLER_MANAGER_RATE_LIMIT: [string, string][] = [
  ["kube-api-qps", "100"],
  ["kube-api-burst", "200"],
];

export function schedulerFlags(): Flags {
  return new Map([
    ["kubeconfig", conf("scheduler.conf")],
    ["authentication-kubeconfig", conf("scheduler.conf")],
    ["authorization-kubeconfig", conf("scheduler.conf")],
    ["bind-address", "127.0.0.1"],
    ["leader-elect", "true"],
  ]);
}

/** The component's flags with the cluster file's extraArgs applied (override or add; "" keeps an empty value). */
export function componentFlags(component: ComponentName, cluster: Cluster, host: Host): Flags {
  const base =
    component === "etcd"
      ? etcdFlags(cluster, host)
      : component === "kube-apiserver"
        ? apiserverFlags(cluster, host)
        : component === "kube-controller-manager"
          ? controllerManagerFlags(cluster)
          : schedulerFlags();
  const extra = cluster.spec.controlPlane.extraArgs[EXTRA_ARGS_KEY[component]] ?? {};
  for (const [k, v] of Object.entries(extra)) base.set(k.replace(/^--/, ""), v);
  return base;
}

/** `--initial-cluster` and `--initial-cluster-state` of an etcd unit or static pod manifest already on a host, if any. Pure. */
export function initialClusterOf(text: string): { cluster: string; state: string } | undefined {
  const cluster = /--initial-cluster=(\S+)/.exec(text)?.[1];
  const state = /--initial-cluster-state=(\S+)/.exec(text)?.[1];
  return cluster && state ? { cluster, state } : undefined;
}

/** ["--a=b", ...] in table order. */
export function flagsToArgs(flags: Flags): string[] {
  return [...flags].map(([k, v]) => `--${k}=${v}`);
}
