// kubeprov kubeconfig -f FILE|--name NAME: prints the admin kubeconfig of the first control plane
// (/etc/kubernetes/admin.conf), with the server address one this machine can reach.
import type { Command } from "commander";
import { parseDocument } from "yaml";
import { RuntimeFailure } from "../../errors.js";
import type { Cluster } from "../../spec/schema.js";
import { loadTarget } from "../target.js";
import { targetOptions } from "../options.js";

export const ADMIN_KUBECONFIG = "/etc/kubernetes/admin.conf";

/** The server URL rewritten to the host's SSH address when it names the node's internal address. Pure. */
export function reachableKubeconfig(text: string, host: Cluster["spec"]["hosts"][number]): string {
  if (!host.internalAddress || host.internalAddress === host.address) return text;
  const doc = parseDocument(text);
  const clusters = doc.get("clusters") as { items?: Array<{ getIn(p: string[]): unknown; setIn(p: string[], v: unknown): void }> } | undefined;
  for (const c of clusters?.items ?? []) {
    const server = String(c.getIn(["cluster", "server"]) ?? "");
    const u = new URL(server);
    const h = u.hostname.replace(/^\[|\]$/g, "");
    if (h === host.internalAddress) {
      u.hostname = host.address.includes(":") ? `[${host.address}]` : host.address;
      c.setIn(["cluster", "server"], u.toString().replace(/\/$/, ""));
    }
  }
  return doc.toString();
}

export async function readAdminKubeconfig(cluster: Cluster): Promise<string> {
  const first = cluster.spec.hosts.find((h) => h.roles.includes("control-plane"));
  if (!first) throw new RuntimeFailure(`cluster ${cluster.metadata.name} has no control plane`);
  const { connectHosts, closeHosts } = await import("../../engine/hosts.js");
  const one: Cluster = { ...cluster, spec: { ...cluster.spec, hosts: [first] } };
  const hosts = await connectHosts(one, { acceptNewHostKeys: false });
  try {
    const data = await hosts[0].transport.readFile(ADMIN_KUBECONFIG);
    if (!data) throw new RuntimeFailure(`${first.name}: ${ADMIN_KUBECONFIG} does not exist: run \`kubeprov init\` first`);
    return reachableKubeconfig(data.toString("utf8"), first);
  } finally {
    await closeHosts(hosts);
  }
}

export function register(program: Command): void {
  targetOptions(program.command("kubeconfig").description("print the admin kubeconfig of the cluster's first control plane")).action(
    async (o: { file?: string; name?: string }) => {
      const { cluster } = await loadTarget(o);
      process.stdout.write(await readAdminKubeconfig(cluster));
    },
  );
}
