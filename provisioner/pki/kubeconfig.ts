// Kubeconfig files with embedded client certificates (the layout kubeadm writes): one cluster, one
// user, one context "<user>@<cluster>". Building is pure; parsing returns the parts the checks need.
import { parse, stringify } from "yaml";

export interface KubeconfigInput {
  clusterName: string;
  server: string;
  caCertPem: string;
  userName: string;
  clientCertPem: string;
  clientKeyPem: string;
}

const b64 = (s: string) => Buffer.from(s, "utf8").toString("base64");

export function buildKubeconfig(k: KubeconfigInput): string {
  const context = `${k.userName}@${k.clusterName}`;
  return stringify(
    {
      apiVersion: "v1",
      kind: "Config",
      clusters: [{ name: k.clusterName, cluster: { "certificate-authority-data": b64(k.caCertPem), server: k.server } }],
      contexts: [{ name: context, context: { cluster: k.clusterName, user: k.userName } }],
      "current-context": context,
      users: [{ name: k.userName, user: { "client-certificate-data": b64(k.clientCertPem), "client-key-data": b64(k.clientKeyPem) } }],
    },
    { lineWidth: 0 },
  );
}

export interface ParsedKubeconfig {
  server: string;
  caCertPem: string;
  clientCertPem: string;
  clientKeyPem: string;
  userName: string;
  clusterName: string;
}

/** The current context's cluster and user, with embedded data. Throws a plain Error when something is missing. */
export function parseKubeconfig(text: Buffer | string): ParsedKubeconfig {
  let doc: any;
  try {
    doc = parse(text.toString());
  } catch {
    throw new Error("is not YAML");
  }
  if (!doc || typeof doc !== "object") throw new Error("is not a kubeconfig");
  const ctxName = doc["current-context"];
  const ctx = (doc.contexts ?? []).find((c: any) => c?.name === ctxName)?.context;
  if (!ctx) throw new Error(`has no current context`);
  const cluster = (doc.clusters ?? []).find((c: any) => c?.name === ctx.cluster)?.cluster;
  const user = (doc.users ?? []).find((u: any) => u?.name === ctx.user)?.user;
  if (!cluster || !user) throw new Error(`has no cluster or user for context ${ctxName}`);
  const d = (v: unknown, what: string) => {
    if (typeof v !== "string" || !v) throw new Error(`has no embedded ${what}`);
    return Buffer.from(v, "base64").toString("utf8");
  };
  return {
    server: String(cluster.server ?? ""),
    caCertPem: d(cluster["certificate-authority-data"], "certificate-authority-data"),
    clientCertPem: d(user["client-certificate-data"], "client-certificate-data"),
    clientKeyPem: d(user["client-key-data"], "client-key-data"),
    userName: String(ctx.user),
    clusterName: String(ctx.cluster),
  };
}
