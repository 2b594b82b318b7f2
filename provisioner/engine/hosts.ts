// The engine's Host values for a cluster's hosts: each host's spec and the transport that reaches it
// (transport/pool.ts opens them), connected in parallel with a bound, and one error that lists every
// host that could not be reached.
import { RuntimeFailure } from "../errors.js";
import { SSH_CONNECT_CONCURRENCY } from "../constants.js";
import type { Cluster, HostSpec } from "../spec/schema.js";
import type { Transport } from "../transport/transport.js";
import { BastionPool, mapLimit, openTransport, type ConnectOptions } from "../transport/pool.js";
import type { Host } from "./task.js";

/** The engine's Host for one host of the cluster file, reached through its open transport. */
export function toHost(spec: HostSpec, transport: Transport): Host {
  return {
    name: spec.name,
    address: spec.address,
    nodeIP: spec.internalAddress ?? spec.address,
    roles: [...spec.roles],
    spec,
    transport,
  };
}

export type HostConnection = { spec: HostSpec; host: Host; error?: undefined } | { spec: HostSpec; host?: undefined; error: Error };

/** Connect to every host; never throws for a host: each result carries its Host or its error. */
export async function connectHostsSettled(cluster: Cluster, opts: ConnectOptions = {}): Promise<HostConnection[]> {
  const bastions = new BastionPool();
  return mapLimit(cluster.spec.hosts, opts.concurrency ?? SSH_CONNECT_CONCURRENCY, async (spec): Promise<HostConnection> => {
    try {
      const transport = await openTransport(cluster, spec, { ...opts, bastions });
      return { spec, host: toHost(spec, transport) };
    } catch (e) {
      return { spec, error: e as Error };
    }
  });
}

/** Connect to every host, or close what was opened and throw one error naming each failing host. */
export async function connectHosts(cluster: Cluster, opts: ConnectOptions = {}): Promise<Host[]> {
  const results = await connectHostsSettled(cluster, opts);
  const failed = results.filter((r) => r.error);
  const hosts = results.flatMap((r) => (r.host ? [r.host] : []));
  if (failed.length) {
    await closeHosts(hosts);
    const names = failed.map((f) => f.spec.name);
    throw new RuntimeFailure(
      `cannot connect to ${failed.length} of ${results.length} host${results.length === 1 ? "" : "s"}: ${names.join(", ")}`,
      failed.map((f) => `${f.spec.name}: ${stripHostPrefix(f.spec.name, f.error!.message)}`).join("\n"),
    );
  }
  return hosts;
}

function stripHostPrefix(host: string, message: string): string {
  return message.startsWith(`${host}: `) ? message.slice(host.length + 2) : message;
}

export async function closeHosts(hosts: Host[]): Promise<void> {
  await Promise.all(hosts.map((h) => h.transport.close().catch(() => undefined)));
}
