// Opening a transport to a cluster's host: per-host SSH settings (spec.ssh merged with the host's
// ssh overrides), one shared connection per bastion, and a bound on work done at once (mapLimit).
// engine/hosts.ts connects every host of a cluster through it.
import type { Client as ClientT } from "ssh2";
import { SSH_CONNECT_TIMEOUT_MS } from "../constants.js";
import type { Cluster, HostSpec } from "../spec/schema.js";
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
  /** Shared bastion connections (engine/hosts.ts's connectHosts passes one for all hosts). */
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
