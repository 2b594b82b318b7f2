// Local files of a driver-made cluster, all under clusterDir(NAME): the cluster's SSH key pair and
// the known_hosts file holding the nodes' host keys (read through the driver, never accepted on
// first use). `delete` removes the directory.
import { existsSync, linkSync, mkdirSync, readFileSync, renameSync, writeFileSync, chmodSync, rmSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import ssh2 from "ssh2";
import { clusterDir } from "../paths.js";
import { RuntimeFailure, lastLines } from "../errors.js";

export interface ClusterFiles {
  dir: string;
  identityFile: string;
  publicKeyFile: string;
  knownHostsFile: string;
  clusterFile: string;
  kubeconfig: string;
}

export function clusterFiles(cluster: string): ClusterFiles {
  const dir = clusterDir(cluster);
  return {
    dir,
    identityFile: join(dir, "id_ed25519"),
    publicKeyFile: join(dir, "id_ed25519.pub"),
    knownHostsFile: join(dir, "known_hosts"),
    clusterFile: join(dir, "cluster.yaml"),
    kubeconfig: join(dir, "admin.conf"),
  };
}

/** Writes atomically (temp file in the same directory + rename) with an explicit mode. */
export function writeFileAtomic(path: string, data: string | Buffer, mode: number): void {
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/**
 * The cluster's ed25519 key pair (created once, 0600 private / 0644 public); returns the public
 * key line. Safe when two `up`s run at once: the private key is published with link(), which
 * fails when the file exists, so exactly one key wins and the loser adopts it; the public key is
 * always derived from the private key on disk.
 */
export async function ensureClusterKey(cluster: string): Promise<string> {
  const f = clusterFiles(cluster);
  mkdirSync(f.dir, { recursive: true, mode: 0o700 });
  chmodSync(f.dir, 0o700);
  if (!existsSync(f.identityFile)) {
    const tmp = join(f.dir, `.id_ed25519.tmp-${process.pid}-${Date.now()}`);
    const r = await execa("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", `kubeprov-${cluster}`, "-f", tmp], { reject: false });
    if (r.exitCode !== 0) throw new RuntimeFailure("ssh-keygen failed", lastLines(String(r.stderr), 10));
    chmodSync(tmp, 0o600);
    try {
      linkSync(tmp, f.identityFile);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    } finally {
      rmSync(tmp, { force: true });
      rmSync(`${tmp}.pub`, { force: true });
    }
  }
  // The public half, derived from the private key in this process (as `ssh-keygen -y` would).
  const key = ssh2.utils.parseKey(readFileSync(f.identityFile));
  if (key instanceof Error || Array.isArray(key)) throw new RuntimeFailure(`cannot read the cluster key ${f.identityFile}: ${key instanceof Error ? key.message : "more than one key in it"}`);
  const line = `${key.type} ${key.getPublicSSH().toString("base64")} kubeprov-${cluster}`;
  if (!existsSync(f.publicKeyFile) || readFileSync(f.publicKeyFile, "utf8").trim() !== line) writeFileAtomic(f.publicKeyFile, line + "\n", 0o644);
  return line;
}

/**
 * known_hosts lines for nodes: one line per name (address and node name) per host key.
 * `keys` are the contents of the nodes' /etc/ssh/ssh_host_*_key.pub ("type base64 comment").
 */
export function knownHostsLines(entries: Array<{ names: string[]; keys: string[] }>): string {
  const lines: string[] = [];
  for (const e of entries) {
    for (const key of e.keys) {
      const [type, blob] = key.trim().split(/\s+/);
      if (!type || !blob) continue;
      for (const name of e.names) lines.push(`${name} ${type} ${blob}`);
    }
  }
  return lines.length ? lines.join("\n") + "\n" : "";
}
