// Phase "join" for workers (kubeadm join, TLS bootstrap): the cluster CA and a bootstrap kubeconfig
// with a bootstrap token on the joining host; the kubelet then asks the API server for its client
// certificate (the CSR is approved by the RBAC the bootstrap phase made) and writes kubelet.conf.
import { stringify } from "yaml";
import { KUBERNETES_DIR, PKI_DIR } from "../constants.js";
import { HostError } from "../errors.js";
import type { CheckResult, Host, RunContext, Task } from "../engine/task.js";
import { BOOTSTRAP_KUBELET_KUBECONFIG, KUBELET_KUBECONFIG } from "./kubelet.js";
import { shq } from "../transport/transport.js";
import { joinEndpoint } from "../bootstrap/joincmd.js";
import { firstControlPlane } from "../plan/topology.js";

export const JOIN_KUBECONFIG_TASK = "join/bootstrap-kubeconfig";

/** The API server joining nodes talk to: the one token discovery found, else the controlPlaneEndpoint or the first control plane. */
export function joinServer(ctx: RunContext): string {
  return ctx.joinTo?.server ?? `https://${joinEndpoint(ctx.cluster, firstControlPlane(ctx).nodeIP)}`;
}
export const SHARED_TOKEN_KEY = "bootstrap.token";

/** A kubeconfig that authenticates with a bootstrap token. Pure. */
export function bootstrapKubeconfig(server: string, caPem: Buffer, token: string, clusterName: string): string {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: clusterName, cluster: { server, "certificate-authority-data": caPem.toString("base64") } }],
    users: [{ name: "tls-bootstrap-token-user", user: { token } }],
    contexts: [{ name: `tls-bootstrap-token-user@${clusterName}`, context: { cluster: clusterName, user: "tls-bootstrap-token-user" } }],
    "current-context": `tls-bootstrap-token-user@${clusterName}`,
  });
}

/**
 * `server`: the API server joining kubelets talk to; `ca`: the cluster CA certificate (read from
 * the first control plane, or found by token discovery); the token is the discovered one, else
 * the one this run's bootstrap-token task made or picked.
 */
export function joinKubeconfigTask(opts: { hosts: (ctx: RunContext) => Host[]; after: string[]; server: (ctx: RunContext) => string; ca: (ctx: RunContext) => Promise<Buffer> }): Task {
  return {
    name: JOIN_KUBECONFIG_TASK,
    phase: "join",
    description: `the cluster CA and ${BOOTSTRAP_KUBELET_KUBECONFIG} (bootstrap token) on joining hosts`,
    hosts: opts.hosts,
    after: opts.after,
    async check(host): Promise<CheckResult> {
      const r = await host.transport.exec(`test -s ${KUBELET_KUBECONFIG} && echo joined || true`, { sudo: true });
      if (r.stdout.includes("joined")) return { needed: false, reason: `${KUBELET_KUBECONFIG} exists: the kubelet has its credentials` };
      return { needed: true, reason: `write ${PKI_DIR}/ca.crt and ${BOOTSTRAP_KUBELET_KUBECONFIG}` };
    },
    async apply(host, ctx) {
      const token = ctx.joinTo?.token ?? (ctx.shared.get(SHARED_TOKEN_KEY) as string | undefined);
      if (!token) throw new HostError(host.name, JOIN_KUBECONFIG_TASK, "no bootstrap token from the bootstrap-token task of this run");
      const ca = await opts.ca(ctx);
      await host.transport.exec(`mkdir -p ${shq(PKI_DIR)} && chmod 0755 ${shq(KUBERNETES_DIR)}`, { sudo: true });
      await host.transport.writeFile(`${PKI_DIR}/ca.crt`, ca, { mode: 0o644 });
      await host.transport.writeFile(BOOTSTRAP_KUBELET_KUBECONFIG, bootstrapKubeconfig(opts.server(ctx), ca, token, ctx.cluster.metadata.name), { mode: 0o600 });
      return { detail: `wrote ${PKI_DIR}/ca.crt, ${BOOTSTRAP_KUBELET_KUBECONFIG}` };
    },
  };
}
