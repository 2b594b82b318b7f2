// What init prints at the end (like kubeadm): where the admin kubeconfig is, and how to join
// workers and control planes, the kubeprov way and the kubeadm way (token + CA hash).
import { PKI_DIR, PORT_APISERVER } from "../constants.js";
import type { RunContext } from "../engine/task.js";
import { caCertHash } from "../pki/hash.js";
import { splitHostPort } from "../pki/names.js";
import type { Cluster } from "../spec/schema.js";
import { firstControlPlane } from "./api.js";
import { SHARED_TOKEN } from "./token.js";
import { clusterHasExternalEtcd } from "../plan/topology.js";

/** host:port that joining nodes use: the controlPlaneEndpoint, else the first control plane on 6443. */
export function joinEndpoint(cluster: Cluster, firstControlPlaneIP: string): string {
  const ep = cluster.spec.controlPlaneEndpoint;
  const { host, port } = ep ? splitHostPort(ep, PORT_APISERVER) : { host: firstControlPlaneIP, port: PORT_APISERVER };
  return `${host.includes(":") ? `[${host}]` : host}:${port}`;
}

export interface JoinLineInput {
  endpoint: string;
  token: string;
  /** "sha256:<hex>". */
  caHash: string;
  /** How a user names this cluster to kubeprov: "-f FILE" or "--name NAME". */
  target: string;
  /** The certificate key of kube-system/kubeadm-certs (init --upload-certs), printed here only. */
  certificateKey?: string;
  /**
   * false: the real `kubeadm join --control-plane` cannot join this cluster, so its line is not
   * printed. kubeadm finds the stacked etcd members only from the etcd pods' annotation, and with
   * controlPlane.mode systemd there are no etcd pods (it fails at its phase check-etcd).
   */
  kubeadmControlPlane?: boolean;
  /** Etcd on hosts of its own: a control plane cannot join from its own machine (it must reach them). */
  externalEtcd?: boolean;
}

/** Whether the real `kubeadm join --control-plane` can join: not with stacked etcd run as systemd units. */
export function kubeadmCanJoinControlPlane(cluster: Cluster): boolean {
  return cluster.spec.controlPlane.mode === "static-pods" || clusterHasExternalEtcd(cluster);
}

export function kubeadmJoinLine(i: JoinLineInput, controlPlane = false): string {
  const cp = controlPlane ? ` --control-plane${i.certificateKey ? ` --certificate-key ${i.certificateKey}` : ""}` : "";
  return `kubeadm join ${i.endpoint} --token ${i.token} --discovery-token-ca-cert-hash ${i.caHash}${cp}`;
}

/** `kubeprov join ENDPOINT …` run on the joining machine; a control plane's with the certificate key in the environment, not in argv. */
export function kubeprovJoinHereLine(i: JoinLineInput, controlPlane = false): string {
  const line = `kubeprov join ${i.endpoint} --token ${i.token} --discovery-token-ca-cert-hash ${i.caHash}`;
  return controlPlane ? `KUBEPROV_CERTIFICATE_KEY=${i.certificateKey} ${line} --control-plane` : line;
}

/** The join lines for workers and control planes. */
export function joinLines(i: JoinLineInput): string[] {
  return [
    "To add nodes, list them in the cluster file (roles: [worker] or [control-plane]) and run:",
    "",
    `  kubeprov join ${i.target}`,
    "",
    ...(i.certificateKey
      ? [
          "Control planes can take the shared CAs and keys from Secret kube-system/kubeadm-certs instead of",
          "having them copied (the key in the environment, not on the command line):",
          "",
          `  KUBEPROV_CERTIFICATE_KEY=${i.certificateKey} kubeprov join ${i.target} --token ${i.token}`,
          "",
        ]
      : []),
    "Or, on a machine the cluster file does not list, run there (as root, with kubeprov and its bundle):",
    "",
    `  ${kubeprovJoinHereLine(i)}`,
    ...(i.certificateKey && i.externalEtcd !== true ? ["", "and for a control plane:", "", `  ${kubeprovJoinHereLine(i, true)}`] : []),
    "",
    "Or join a worker by hand with kubeadm:",
    "",
    `  ${kubeadmJoinLine(i)}`,
    "",
    ...(i.kubeadmControlPlane === false
      ? ["(kubeadm cannot join a control plane here: it finds the etcd members from etcd pods, and controlPlane.mode systemd runs none; use kubeprov join.)"]
      : [
          i.certificateKey ? "and a control plane:" : "and a control plane (after copying /etc/kubernetes/pki/{ca,sa,front-proxy-ca,etcd/ca}.* to it):",
          "",
          `  ${kubeadmJoinLine(i, true)}`,
        ]),
    ...(i.certificateKey
      ? [
          "",
          "The certificate key opens the cluster's CA keys: keep it secret. Secret kube-system/kubeadm-certs is",
          "deleted in two hours; `kubeprov init phase upload-certs --upload-certs` uploads it again under a new key.",
        ]
      : []),
  ];
}

/** "-f FILE" or "--name NAME" from a run's source (a driver cluster's file lives in its state dir). */
export function targetOf(source: string, clusterName: string): string {
  return /\/clusters\/[^/]+\/cluster\.yaml$/.test(source) ? `--name ${clusterName}` : `-f ${source}`;
}

/**
 * The text init prints once it is done (no secrets besides the join token, which the user needs;
 * print it on stdout, never in logs).
 */
export async function joinCommands(ctx: RunContext, opts: { token?: string; kubeconfigPath?: string; certificateKey?: string } = {}): Promise<string> {
  const cp = firstControlPlane(ctx);
  const target = targetOf(ctx.source, ctx.cluster.metadata.name);
  const lines = [
    "Your Kubernetes control plane has initialized successfully!",
    "",
    "To use the cluster:",
    "",
    ...(opts.kubeconfigPath
      ? [`  export KUBECONFIG=${opts.kubeconfigPath}`]
      : [`  kubeprov kubeconfig ${target} > admin.conf`, "  export KUBECONFIG=$PWD/admin.conf"]),
    `  (on ${cp.name}: /etc/kubernetes/admin.conf)`,
    "",
  ];
  const token = opts.token ?? (ctx.shared.get(SHARED_TOKEN) as string | undefined);
  const ca = await cp.transport.readFile(`${PKI_DIR}/ca.crt`);
  if (!token || !ca) {
    lines.push(`Create a join token and print the join commands with: kubeprov token create ${target} --print-join-command`);
  } else {
    lines.push(...joinLines({ endpoint: joinEndpoint(ctx.cluster, cp.nodeIP), token, caHash: caCertHash(ca), target, certificateKey: opts.certificateKey, kubeadmControlPlane: kubeadmCanJoinControlPlane(ctx.cluster), externalEtcd: clusterHasExternalEtcd(ctx.cluster) }));
  }
  return lines.join("\n") + "\n";
}
