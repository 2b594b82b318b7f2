// SshTransport: one ssh2 connection per host, reused for every command (exec channels are
// multiplexed, at most `maxChannels` at a time: OpenSSH's MaxSessions is 10). Host keys are checked
// against known_hosts; only connection set-up is retried, never authentication or host-key
// failures. A bastion is reached first, and the target through a forwarded channel, its host key
// checked too.
import { readFileSync, existsSync } from "node:fs";
import ssh2 from "ssh2";
import type { Client as ClientT, ConnectConfig, ClientChannel } from "ssh2";
import { CommandError, ConfigError, HostError } from "../errors.js";
import { SSH_CONNECT_ATTEMPTS, SSH_CONNECT_TIMEOUT_MS, SSH_MAX_CHANNELS } from "../constants.js";
import { expandHome } from "../paths.js";
import type { ExecOptions, ExecResult, Transport, WriteOptions } from "./transport.js";
import { shq } from "./transport.js";
import {
  appendKnownHost,
  fingerprint,
  hostToken,
  keyTypeOf,
  knownKeyTypes,
  preferredHostKeyAlgorithms,
  readKnownHostsFile,
  verifyHostKey,
} from "./knownhosts.js";
import { execOutcome, READ_MISSING_CODE, readScript, sudoWrap, writeScript } from "./scripts.js";

const { Client, utils } = ssh2;

/** Credentials and host-key policy, shared by a host and its bastion. */
export interface SshAuth {
  user: string;
  identityFile?: string;
  useAgent?: boolean;
  /** Name of the environment variable holding the key's passphrase. */
  passphraseEnv?: string;
  /** Name of the environment variable holding the password. */
  passwordEnv?: string;
  knownHostsFile: string;
  /** Record unknown host keys instead of refusing them. A changed key is always refused. */
  acceptNewHostKeys?: boolean;
  /** Record new keys hashed (|1|salt|hmac) rather than in plain text. */
  hashKnownHosts?: boolean;
}

export interface SshEndpoint {
  address: string;
  port: number;
  user?: string;
}

export interface SshConnectOptions extends SshAuth {
  /** The host's name, as used in messages. */
  host: string;
  address: string;
  port: number;
  /** Total time for connection set-up, retries included (default SSH_CONNECT_TIMEOUT_MS). */
  connectTimeoutMs?: number;
  /** Attempts for connection set-up (refused, reset, timed out). Default SSH_CONNECT_ATTEMPTS. */
  connectAttempts?: number;
  /** Concurrent exec channels on the connection. */
  maxChannels?: number;
  /** Reach the target through this jump host. */
  bastion?: SshEndpoint;
  /** An already connected bastion client to tunnel through (shared by hosts; not closed by us). */
  via?: ClientT;
  /** Called when the transport closes (the pool releases a shared bastion). */
  onClose?: () => void;
}

/** Parse "user@host:port", "host:port", "user@host", "host" or "[v6addr]:port". */
export function parseBastion(s: string): SshEndpoint {
  let rest = s.trim();
  let user: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= 0) {
    user = rest.slice(0, at);
    rest = rest.slice(at + 1);
  }
  let address = rest;
  let port = 22;
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(rest);
  if (v6) {
    address = v6[1];
    if (v6[2]) port = Number(v6[2]);
  } else if (/^[^:]+:\d+$/.test(rest)) {
    const i = rest.lastIndexOf(":");
    address = rest.slice(0, i);
    port = Number(rest.slice(i + 1));
  }
  if (!address || !(port >= 1 && port <= 65535) || user === "") throw new ConfigError(`invalid bastion ${JSON.stringify(s)} (want user@host:port)`);
  return { address, port, user };
}

/** Error for set-up failures that are worth retrying. */
class RetryableError extends Error {}

const RETRYABLE_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "EPIPE"]);

function describe(ep: { address: string; port: number }, user?: string): string {
  return `${user ? `${user}@` : ""}${ep.address.includes(":") ? `[${ep.address}]` : ep.address}:${ep.port}`;
}

/** Build ssh2's auth settings; secrets come from environment variables only. */
function authConfig(host: string, auth: SshAuth): { cfg: Partial<ConnectConfig>; methods: string[] } {
  const cfg: Partial<ConnectConfig> = {};
  const methods: string[] = [];
  if (auth.identityFile) {
    const file = expandHome(auth.identityFile);
    if (!existsSync(file)) throw new HostError(host, undefined, `SSH identity file ${file} does not exist`);
    const keyText = readFileSync(file);
    const passphrase = auth.passphraseEnv ? process.env[auth.passphraseEnv] : undefined;
    if (auth.passphraseEnv && passphrase === undefined) {
      throw new HostError(host, undefined, `environment variable ${auth.passphraseEnv} (ssh.passphraseEnv) is not set`);
    }
    const parsed = utils.parseKey(keyText, passphrase);
    if (parsed instanceof Error) {
      const encrypted = /encrypted|passphrase/i.test(parsed.message);
      throw new HostError(
        host,
        undefined,
        encrypted
          ? `SSH key ${file} is encrypted: ${auth.passphraseEnv ? `the passphrase in $${auth.passphraseEnv} does not open it` : "set ssh.passphraseEnv to the name of an environment variable holding its passphrase"}`
          : `cannot read SSH key ${file}: ${parsed.message}`,
      );
    }
    cfg.privateKey = keyText;
    if (passphrase !== undefined) cfg.passphrase = passphrase;
    methods.push(`publickey (${file})`);
  }
  if (auth.useAgent && process.env.SSH_AUTH_SOCK) {
    cfg.agent = process.env.SSH_AUTH_SOCK;
    methods.push("agent");
  }
  if (auth.passwordEnv) {
    const pw = process.env[auth.passwordEnv];
    if (pw === undefined) throw new HostError(host, undefined, `environment variable ${auth.passwordEnv} (ssh.passwordEnv) is not set`);
    cfg.password = pw;
    methods.push("password");
  }
  if (methods.length === 0) {
    throw new HostError(host, undefined, "no SSH credentials: set ssh.identityFile, run an SSH agent (SSH_AUTH_SOCK) or set ssh.passwordEnv");
  }
  return { cfg, methods };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Open an authenticated ssh2 Client to one endpoint, retrying only set-up failures with backoff,
 * all within `timeoutMs`. `via` tunnels through an existing client (bastion).
 */
export async function connectClient(
  host: string,
  ep: SshEndpoint,
  auth: SshAuth,
  opts: { timeoutMs?: number; attempts?: number; via?: ClientT; role?: string } = {},
): Promise<ClientT> {
  const user = ep.user ?? auth.user;
  const { cfg: authCfg, methods } = authConfig(host, auth);
  const deadline = Date.now() + (opts.timeoutMs ?? SSH_CONNECT_TIMEOUT_MS);
  const attempts = Math.max(1, opts.attempts ?? SSH_CONNECT_ATTEMPTS);
  const what = `${opts.role ? `${opts.role} ` : ""}${describe(ep, user)}`;
  let last: Error | undefined;
  for (let i = 1; i <= attempts; i++) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    try {
      return await attemptOnce(host, ep, user, auth, authCfg, methods, remaining, opts.via, what);
    } catch (e) {
      if (!(e instanceof RetryableError)) throw e;
      last = e;
      const backoff = Math.min(250 * 2 ** (i - 1), 2000);
      if (i === attempts || Date.now() + backoff >= deadline) break;
      await sleep(backoff);
    }
  }
  throw new HostError(host, undefined, `cannot connect to ${what}: ${last?.message ?? "timed out"}`);
}

function attemptOnce(
  host: string,
  ep: SshEndpoint,
  user: string,
  auth: SshAuth,
  authCfg: Partial<ConnectConfig>,
  methods: string[],
  timeoutMs: number,
  via: ClientT | undefined,
  what: string,
): Promise<ClientT> {
  return new Promise((resolve, reject) => {
    const knownHostsFile = expandHome(auth.knownHostsFile);
    const entries = readKnownHostsFile(knownHostsFile);
    const client = new Client();
    let refusal: HostError | undefined;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const fail = (err: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      client.end();
      reject(err);
    };
    // Our own deadline also covers the bastion's forwarding step.
    timer = setTimeout(() => fail(new RetryableError(`timed out after ${timeoutMs} ms`)), timeoutMs);

    const hostVerifier = (key: Buffer): boolean => {
      const verdict = verifyHostKey(entries, ep.address, ep.port, key);
      const token = hostToken(ep.address, ep.port);
      const fp = `${keyTypeOf(key)} ${fingerprint(key)}`;
      switch (verdict.status) {
        case "trusted":
          return true;
        case "revoked":
          refusal = new HostError(host, undefined, `host key ${fp} of ${token} is marked @revoked in ${knownHostsFile} (line ${verdict.entry.line}); refusing to connect`);
          return false;
        case "changed":
        case "other-type": {
          const lines = verdict.expected.map((e) => e.line).join(", ");
          refusal = new HostError(
            host,
            undefined,
            `REMOTE HOST KEY CHANGED for ${token} (host ${host}): the server presented ${fp}, but ${knownHostsFile} (line ${lines}) records a different host key${verdict.status === "other-type" ? ` (of type ${verdict.knownTypes.join(", ")})` : ""}. This may be an attack; if the host was really re-installed, remove the old entry (ssh-keygen -R '${token}' -f ${knownHostsFile}) and connect again`,
          );
          return false;
        }
        case "unknown":
          if (!auth.acceptNewHostKeys) {
            refusal = new HostError(
              host,
              undefined,
              `unknown host key for ${token} (host ${host}, ${fp}): not in ${knownHostsFile}. Check the fingerprint and run again with --accept-new-host-keys to record it`,
            );
            return false;
          }
          try {
            appendKnownHost(knownHostsFile, ep.address, ep.port, key, { hashed: auth.hashKnownHosts });
          } catch (e) {
            refusal = new HostError(host, undefined, `cannot record the host key of ${token} in ${knownHostsFile}: ${(e as Error).message}`);
            return false;
          }
          return true;
      }
    };

    client.on("ready", () => {
      if (settled) {
        client.end();
        return;
      }
      settled = true;
      clearTimeout(timer);
      resolve(client);
    });
    client.on("error", (err: Error & { level?: string; code?: string }) => {
      if (refusal) return fail(refusal);
      if (err.level === "client-authentication") {
        return fail(new HostError(host, undefined, `SSH authentication failed for ${what} (tried: ${methods.join(", ")}): the server accepted none of them`));
      }
      if (err.level === "client-timeout") return fail(new RetryableError(`timed out after ${timeoutMs} ms`));
      if ((err.code && RETRYABLE_CODES.has(err.code)) || err.level === "client-socket") {
        return fail(new RetryableError(err.code ? `${err.code} (${err.message})` : err.message));
      }
      fail(new HostError(host, undefined, `SSH connection to ${what} failed: ${err.message}`));
    });
    client.on("close", () => {
      if (refusal) return fail(refusal);
      fail(new RetryableError("connection closed during set-up"));
    });

    const known = knownKeyTypes(entries, ep.address, ep.port);
    const config: ConnectConfig = {
      username: user,
      readyTimeout: timeoutMs,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      hostVerifier,
      algorithms: { serverHostKey: preferredHostKeyAlgorithms(known) as never },
      ...authCfg,
    };
    if (via) {
      via.forwardOut("127.0.0.1", 0, ep.address, ep.port, (err, stream) => {
        if (err) return fail(new RetryableError(`the bastion cannot open a channel to ${describe(ep)}: ${err.message}`));
        client.connect({ ...config, sock: stream });
      });
    } else {
      client.connect({ ...config, host: ep.address, port: ep.port });
    }
  });
}

/** The server refused to open a channel (the command did not start): retried by run(). */
class ChannelOpenFailure extends Error {
  constructor(readonly error: Error) {
    super(error.message);
  }
}

/** A counting semaphore for exec channels. */
class Slots {
  private waiting: Array<() => void> = [];
  constructor(private free: number) {}
  async take(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((r) => this.waiting.push(r));
  }
  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

interface RawResult {
  stdout: Buffer;
  stderr: Buffer;
  code: number | null;
  signal?: string;
  timedOut: boolean;
}

const DEFAULT_EXEC_TIMEOUT_MS = 10 * 60_000;

export class SshTransport implements Transport {
  readonly host: string;
  readonly user: string;
  private readonly slots: Slots;
  private lost: Error | undefined;
  private closed = false;

  private constructor(
    private readonly client: ClientT,
    private readonly bastionClient: ClientT | undefined,
    private readonly opts: SshConnectOptions,
  ) {
    this.host = opts.host;
    this.user = opts.user;
    this.slots = new Slots(opts.maxChannels ?? SSH_MAX_CHANNELS);
    client.on("close", () => {
      if (!this.closed) this.lost = new HostError(this.host, undefined, "SSH connection lost");
    });
    client.on("error", (err: Error) => {
      if (!this.closed) this.lost = new HostError(this.host, undefined, `SSH connection lost: ${err.message}`);
    });
  }

  /** Connect (through the bastion when one is given) and verify host keys. */
  static async connect(opts: SshConnectOptions): Promise<SshTransport> {
    const timeoutMs = opts.connectTimeoutMs ?? SSH_CONNECT_TIMEOUT_MS;
    const deadline = Date.now() + timeoutMs; // bastion and target share the budget
    let via = opts.via;
    let own: ClientT | undefined;
    if (!via && opts.bastion) {
      own = await connectClient(opts.host, opts.bastion, opts, { timeoutMs, attempts: opts.connectAttempts, role: "bastion" });
      via = own;
    }
    try {
      const client = await connectClient(opts.host, { address: opts.address, port: opts.port }, opts, {
        timeoutMs: Math.max(1000, deadline - Date.now()),
        attempts: opts.connectAttempts,
        via,
      });
      return new SshTransport(client, own, opts);
    } catch (e) {
      own?.end();
      throw e;
    }
  }

  private get isRoot(): boolean {
    return this.user === "root";
  }

  private async run(command: string, stdin: string | Buffer | undefined, timeoutMs: number): Promise<RawResult> {
    if (this.closed) throw new HostError(this.host, undefined, "transport is closed");
    if (this.lost) throw this.lost;
    await this.slots.take();
    try {
      // sshd frees a session only once its process is reaped, a little after the channel closed:
      // under churn it answers "open failed" (MaxSessions) although fewer than maxChannels are open.
      // The command never started, so opening the channel again is safe.
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.runOnce(command, stdin, timeoutMs);
        } catch (e) {
          if (!(e instanceof ChannelOpenFailure) || attempt >= 40) throw e instanceof ChannelOpenFailure ? e.error : e;
          await new Promise((r) => setTimeout(r, 25 + attempt * 25));
        }
      }
    } finally {
      this.slots.give();
    }
  }

  private runOnce(command: string, stdin: string | Buffer | undefined, timeoutMs: number): Promise<RawResult> {
    {
      return new Promise<RawResult>((resolve, reject) => {
        this.client.exec(command, (err, ch: ClientChannel) => {
          if (err && /open failed/i.test(err.message) && !this.lost) return reject(new ChannelOpenFailure(new HostError(this.host, undefined, `cannot start a command: ${err.message}`)));
          if (err) return reject(this.lost ?? new HostError(this.host, undefined, `cannot start a command: ${err.message}`));
          const out: Buffer[] = [];
          const errOut: Buffer[] = [];
          let code: number | null = null;
          let signal: string | undefined;
          let timedOut = false;
          let done = false;
          const timer = setTimeout(() => {
            // The remote `timeout` wrapper kills the command's whole process group; here we stop
            // waiting at once and close the channel.
            timedOut = true;
            try {
              ch.signal("KILL");
            } catch {
              /* the channel may be gone */
            }
            ch.close();
            done = true;
            resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(errOut), code: null, timedOut: true });
          }, timeoutMs);
          ch.on("data", (d: Buffer) => out.push(d));
          ch.stderr.on("data", (d: Buffer) => errOut.push(d));
          ch.on("exit", (c: number | null, sig?: string) => {
            code = c;
            signal = sig ?? undefined;
          });
          ch.on("error", () => {
            /* reported through close */
          });
          ch.on("close", () => {
            clearTimeout(timer);
            if (done) return;
            if (code === null && !timedOut && signal === undefined) {
              return reject(this.lost ?? new HostError(this.host, undefined, "SSH connection lost while a command was running"));
            }
            resolve({ stdout: Buffer.concat(out), stderr: Buffer.concat(errOut), code, signal, timedOut });
          });
          if (stdin !== undefined) ch.end(stdin);
          else ch.end();
        });
      });
    }
  }

  private wrap(command: string, sudo: boolean | undefined, timeoutMs?: number): string {
    // With an explicit time limit, coreutils/busybox `timeout` also kills the command's children
    // on the host (closing the channel alone would leave them running).
    const inner = timeoutMs ? `timeout -s KILL ${Math.ceil(timeoutMs / 1000) + 1} sh -c ${shq(command)}` : `sh -c ${shq(command)}`;
    if (sudo && !this.isRoot) return timeoutMs ? `sudo -n ${inner}` : sudoWrap(command);
    return inner;
  }

  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
    const r = await this.run(this.wrap(command, opts.sudo, opts.timeoutMs), opts.stdin, timeoutMs);
    return execOutcome(this.host, command, r, timeoutMs, opts.check);
  }

  /** File operations run through sudo when the user is not root (they manage system files). */
  async readFile(path: string): Promise<Buffer | undefined> {
    const cmd = readScript(path);
    const r = await this.run(this.wrap(cmd, true), undefined, DEFAULT_EXEC_TIMEOUT_MS);
    if (r.code === READ_MISSING_CODE) return undefined;
    if (r.code !== 0) throw new CommandError(this.host, `cat ${path}`, r.code, "", r.stderr.toString("utf8"));
    return r.stdout;
  }

  async writeFile(path: string, data: string | Buffer, opts: WriteOptions): Promise<void> {
    const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    const cmd = writeScript(path, buf.length, opts.mode, opts.owner);
    const r = await this.run(this.wrap(cmd, true), buf, DEFAULT_EXEC_TIMEOUT_MS);
    if (r.code !== 0) {
      throw new CommandError(this.host, `write ${path} (${buf.length} bytes, mode ${opts.mode.toString(8)})`, r.code, "", r.stderr.toString("utf8"));
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 2000);
      this.client.once("close", () => {
        clearTimeout(t);
        resolve();
      });
      this.client.end();
    });
    this.bastionClient?.end();
    this.opts.onClose?.();
  }
}
