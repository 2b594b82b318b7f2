// Connecting to a cluster's hosts: per-host SSH settings (spec.ssh merged with the host's ssh
// overrides), parallel connection with a bound, one shared connection per bastion, and one error
// that lists every host that could not be reached.
import type { Client as ClientT } from "ssh2";
import { RuntimeFailure } from "../errors.js";
import { SSH_CONNECT_CONCURRENCY, SSH_CONNECT_TIMEOUT_MS } from "../constants.js";
import type { Cluster, HostSpec } from "../spec/schema.js";
import type { Host } from "../engine/task.js";
import type { Transport } from "./transport.js";
import { LocalTransport } from "./local.js";
import { connectClient, parseBastion, SshTransport, type SshAuth, type SshEndpoint } from "./ssh.js";

export interface ConnectOptions {
  /** Record unknown host keys (--accept-new-host-keys). A changed key is refused anyway. */
  acceptNewHostKeys?: boolean;
  /** Record new keys hashed in known_hosts. */
  hashKnownHosts?: boolean;
  /** Hosts connected at once (default SSH_CONNECT_CONCURRENCY). */
  concurrency?: number;
  /** Total connection set-up time per host, retries included. */
  connectTimeoutMs?: number;
  connectAttempts?: number;
}

export interface OpenOptions extends ConnectOptions {
  /** Shared bastion connections (connectHosts passes one for all hosts). */
  bastions?: BastionPool;
}

/** The effective SSH settings of one host. */
export interface HostSsh extends SshAuth {
  port: number;
  bastion?: SshEndpoint;
}

export function hostSshSettings(cluster: Cluster, hostSpec: HostSpec): HostSsh {
  const base = cluster.spec.ssh;
  const o = hostSpec.ssh ?? {};
  const bastion = o.bastion ?? base.bastion;
  return {
    user: o.user ?? base.user,
    port: o.port ?? base.port,
    identityFile: o.identityFile ?? base.identityFile,
    useAgent: base.useAgent,
    passphraseEnv: base.passphraseEnv,
    passwordEnv: base.passwordEnv,
    knownHostsFile: base.knownHostsFile,
    bastion: bastion ? parseBastion(bastion) : undefined,
  };
}

/** One connection per bastion, shared by the hosts behind it; closed when the last one closes. */
export class BastionPool {
  private readonly entries = new Map<string, { client: Promise<ClientT>; refs: number }>();

  async acquire(host: string, ep: SshEndpoint, auth: SshAuth, opts: ConnectOptions): Promise<{ client: ClientT; release: () => void }> {
    const key = `${ep.user ?? auth.user}@${ep.address}:${ep.port}|${auth.identityFile ?? ""}`;
    let e = this.entries.get(key);
    if (!e) {
      const client = connectClient(host, ep, auth, { timeoutMs: opts.connectTimeoutMs, attempts: opts.connectAttempts, role: "bastion" });
      e = { client, refs: 0 };
      this.entries.set(key, e);
      client.catch(() => this.entries.delete(key));
    }
    e.refs++;
    const entry = e;
    try {
      const client = await entry.client;
      let released = false;
      return {
        client,
        release: () => {
          if (released) return;
          released = true;
          if (--entry.refs === 0) {
            this.entries.delete(key);
            client.end();
          }
        },
      };
    } catch (err) {
      entry.refs--;
      throw err;
    }
  }
}

/** Open the transport of one host: local (execa) or SSH. */
export async function openTransport(cluster: Cluster, hostSpec: HostSpec, opts: OpenOptions = {}): Promise<Transport> {
  if (hostSpec.connection === "local") return new LocalTransport(hostSpec.name);
  const s = hostSshSettings(cluster, hostSpec);
  const auth: SshAuth = { ...s, acceptNewHostKeys: opts.acceptNewHostKeys, hashKnownHosts: opts.hashKnownHosts };
  let via: ClientT | undefined;
  let release: (() => void) | undefined;
  // The bastion and the host share one set-up time budget.
  const deadline = Date.now() + (opts.connectTimeoutMs ?? SSH_CONNECT_TIMEOUT_MS);
  if (s.bastion) {
    const pool = opts.bastions ?? new BastionPool();
    const b = await pool.acquire(hostSpec.name, s.bastion, auth, opts);
    via = b.client;
    release = b.release;
  }
  try {
    return await SshTransport.connect({
      ...auth,
      host: hostSpec.name,
      address: hostSpec.address,
      port: s.port,
      via,
      onClose: release,
      connectTimeoutMs: Math.max(1000, deadline - Date.now()),
      connectAttempts: opts.connectAttempts,
    });
  } catch (e) {
    release?.();
    throw e;
  }
}

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

/** Run fn over items with at most `limit` at once; results in input order. */
export async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  return results;
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
