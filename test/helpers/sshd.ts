// Real OpenSSH servers for tests: /usr/sbin/sshd -D -e -f <config> on free 127.0.0.1 ports, each
// with its own host keys in a temp dir, and a generated client key in authorized_keys. Stopped by
// PID; temp dirs removed. Nothing here ever talks to an address other than 127.0.0.1.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, chmodSync, openSync, closeSync, existsSync, appendFileSync } from "node:fs";
import { createServer, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";

export type KeyType = "ed25519" | "ecdsa" | "rsa";

export interface Sshd {
  name: string;
  port: number;
  dir: string;
  pid: number;
  logFile: string;
  /** Public host keys by type: "ssh-ed25519 AAAA...". */
  hostKeys: Partial<Record<KeyType, string>>;
  /** Lines of sshd's log so far. */
  log(): string;
  stop(): Promise<void>;
}

export function keygen(path: string, type: KeyType, comment = "kpt"): string {
  const args = ["-q", "-t", type, "-N", "", "-C", comment, "-f", path];
  if (type === "rsa") args.push("-b", "2048");
  const r = spawnSync("ssh-keygen", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ssh-keygen failed: ${r.stderr}`);
  return readFileSync(`${path}.pub`, "utf8").trim();
}

/** A free TCP port on 127.0.0.1 (bound then released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Wait until something on 127.0.0.1:port sends an SSH banner. */
async function waitForBanner(port: number, timeoutMs: number, proc: ChildProcess, logFile: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`sshd exited with ${proc.exitCode}: ${readFileSync(logFile, "utf8")}`);
    const ok = await new Promise<boolean>((resolve) => {
      const sock = connect({ host: "127.0.0.1", port });
      const done = (v: boolean) => {
        sock.destroy();
        resolve(v);
      };
      sock.once("data", (d) => done(d.toString().startsWith("SSH-")));
      sock.once("error", () => done(false));
      sock.setTimeout(1000, () => done(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`sshd on port ${port} did not answer within ${timeoutMs} ms: ${readFileSync(logFile, "utf8")}`);
}

export interface SshdOptions {
  name: string;
  /** authorized_keys content (one or more public keys). */
  authorizedKeys: string;
  keyTypes?: KeyType[];
  /** Reuse a port (restart with new keys on the same port). */
  port?: number;
  /** Reuse host key files from an earlier server's dir. */
  hostKeysFrom?: string;
  extraConfig?: string;
}

export async function startSshd(opts: SshdOptions): Promise<Sshd> {
  mkdirSync("/run/sshd", { recursive: true, mode: 0o755 }); // privilege separation directory
  const dir = mkdtempSync(join(tmpdir(), `kpt-sshd-${opts.name}-`));
  chmodSync(dir, 0o755); // non-root users must read authorized_keys here
  const port = opts.port ?? (await freePort());
  const types = opts.keyTypes ?? ["ed25519"];
  const hostKeys: Partial<Record<KeyType, string>> = {};
  const hostKeyLines: string[] = [];
  for (const t of types) {
    const path = join(dir, `ssh_host_${t}_key`);
    if (opts.hostKeysFrom) {
      writeFileSync(path, readFileSync(join(opts.hostKeysFrom, `ssh_host_${t}_key`)), { mode: 0o600 });
      writeFileSync(`${path}.pub`, readFileSync(join(opts.hostKeysFrom, `ssh_host_${t}_key.pub`)));
      hostKeys[t] = readFileSync(`${path}.pub`, "utf8").trim();
    } else {
      hostKeys[t] = keygen(path, t, `host-${opts.name}`);
    }
    hostKeyLines.push(`HostKey ${path}`);
  }
  writeFileSync(join(dir, "authorized_keys"), opts.authorizedKeys.endsWith("\n") ? opts.authorizedKeys : `${opts.authorizedKeys}\n`, { mode: 0o644 });
  // sshd keeps the first value it reads for a keyword: extraConfig goes first so it wins.
  const config = [
    opts.extraConfig ?? "",
    `Port ${port}`,
    "ListenAddress 127.0.0.1",
    ...hostKeyLines,
    `PidFile ${join(dir, "sshd.pid")}`,
    `AuthorizedKeysFile ${join(dir, "authorized_keys")}`,
    "UsePAM no",
    "StrictModes no",
    "PermitRootLogin yes",
    "PasswordAuthentication yes",
    "KbdInteractiveAuthentication no",
    "LogLevel VERBOSE",
    "MaxStartups 200",
    "AllowTcpForwarding yes",
    "PermitUserEnvironment no",
    "Subsystem sftp internal-sftp",
  ].join("\n");
  const configFile = join(dir, "sshd_config");
  writeFileSync(configFile, `${config}\n`);
  const logFile = join(dir, "sshd.log");
  const fd = openSync(logFile, "a");
  const proc = spawn("/usr/sbin/sshd", ["-D", "-e", "-f", configFile], { stdio: ["ignore", fd, fd], detached: false });
  closeSync(fd);
  try {
    await waitForBanner(port, 10_000, proc, logFile);
  } catch (e) {
    if (proc.pid && proc.exitCode === null) proc.kill("SIGTERM");
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const pid = proc.pid!;
  return {
    name: opts.name,
    port,
    dir,
    pid,
    logFile,
    hostKeys,
    log: () => (existsSync(logFile) ? readFileSync(logFile, "utf8") : ""),
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise<void>((r) => proc.once("exit", () => r()));
        process.kill(pid, "SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** PIDs of the children of a process (sshd's per-connection processes), from /proc. */
export function childPids(pid: number): number[] {
  const r = spawnSync("ps", ["-o", "pid=", "--ppid", String(pid)], { encoding: "utf8" });
  return r.stdout
    .split("\n")
    .map((s) => Number(s.trim()))
    .filter((n) => n > 0);
}

/** A client key pair, a known_hosts file and N servers, with a cluster file for them. */
export interface SshFleet {
  dir: string;
  clientKey: string;
  clientPub: string;
  knownHostsFile: string;
  servers: Sshd[];
  /** known_hosts lines (plain, "[127.0.0.1]:port type key") for these servers. */
  knownHostsLines(servers?: Sshd[]): string;
  trustAll(): void;
  /** A cluster object (input form) with one host per server. */
  clusterInput(extra?: { hosts?: Array<Record<string, unknown>>; ssh?: Record<string, unknown> }): Record<string, unknown>;
  clusterYaml(extra?: { hosts?: Array<Record<string, unknown>>; ssh?: Record<string, unknown> }): string;
  stop(): Promise<void>;
}

export async function startFleet(n: number, opts: { keyTypes?: KeyType[]; prefix?: string; trust?: boolean } = {}): Promise<SshFleet> {
  const dir = mkdtempSync(join(tmpdir(), "kpt-fleet-"));
  chmodSync(dir, 0o755);
  const clientKey = join(dir, "id_ed25519");
  const clientPub = keygen(clientKey, "ed25519", "kpt-client");
  const knownHostsFile = join(dir, "known_hosts");
  const servers: Sshd[] = [];
  try {
    // At most 10 servers start at once: a hundred at a time overruns a busy two-core machine.
    for (let first = 0; first < n; first += 10) {
      const started = await Promise.allSettled(
        Array.from({ length: Math.min(10, n - first) }, (_, j) => startSshd({ name: `${opts.prefix ?? "node"}${first + j + 1}`, authorizedKeys: clientPub, keyTypes: opts.keyTypes })),
      );
      // Servers that did start are stopped by the catch below when another one failed.
      for (const s of started) if (s.status === "fulfilled") servers.push(s.value);
      const failed = started.find((s) => s.status === "rejected");
      if (failed) throw failed.reason;
    }
  } catch (e) {
    await Promise.all(servers.map((s) => s.stop()));
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const knownHostsLines = (list: Sshd[] = servers) =>
    list.flatMap((s) => Object.values(s.hostKeys).map((k) => `[127.0.0.1]:${s.port} ${k!.split(" ").slice(0, 2).join(" ")}`)).join("\n") + "\n";
  const clusterInput = (extra: { hosts?: Array<Record<string, unknown>>; ssh?: Record<string, unknown> } = {}) => ({
    apiVersion: "kubeprov/v1alpha1",
    kind: "Cluster",
    metadata: { name: "kpt-ssh" },
    spec: {
      ssh: { user: "root", identityFile: clientKey, knownHostsFile, useAgent: false, ...extra.ssh },
      hosts:
        extra.hosts ??
        servers.map((s, i) => ({
          name: s.name,
          address: "127.0.0.1",
          roles: [i === 0 ? "control-plane" : "worker"],
          ssh: { port: s.port },
        })),
    },
  });
  const fleet: SshFleet = {
    dir,
    clientKey,
    clientPub,
    knownHostsFile,
    servers,
    knownHostsLines,
    trustAll: () => writeFileSync(knownHostsFile, knownHostsLines()),
    clusterInput,
    clusterYaml: (extra) => stringify(clusterInput(extra)),
    stop: async () => {
      await Promise.all(servers.map((s) => s.stop().catch(() => undefined)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
  if (opts.trust !== false) fleet.trustAll();
  return fleet;
}

export const TEST_USER = "kpt-user";

/** Create kpt-user with passwordless sudo (root only). Returns a cleanup function. */
export function createSudoUser(): () => void {
  const exists = spawnSync("id", [TEST_USER]).status === 0;
  if (!exists) {
    const r = spawnSync("useradd", ["-m", "-s", "/bin/sh", "-p", "*", TEST_USER], { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`useradd failed: ${r.stderr}`);
  }
  // sshd without PAM refuses a locked account ("!" as password): "*" means no password, not locked.
  spawnSync("usermod", ["-p", "*", TEST_USER]);
  writeFileSync(`/etc/sudoers.d/${TEST_USER}`, `${TEST_USER} ALL=(ALL) NOPASSWD: ALL\n`, { mode: 0o440 });
  return () => {
    rmSync(`/etc/sudoers.d/${TEST_USER}`, { force: true });
    if (!exists) spawnSync("userdel", ["-r", "-f", TEST_USER]);
  };
}

/** Append text to a file (test convenience). */
export function appendText(path: string, text: string): void {
  appendFileSync(path, text);
}
