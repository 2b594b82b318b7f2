// etcd snapshot files on the machine kubeprov runs on: the integrity hash `etcdctl snapshot save`
// appends, `etcdutl snapshot status` (revision, keys, size), and writing a snapshot atomically with
// mode 0600. A snapshot holds every Secret of its cluster: nothing here logs its content.
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, open, readFile, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { execa } from "execa";
import { RuntimeFailure, UsageError } from "../errors.js";
import type { Cluster } from "../spec/schema.js";
import { artifactsDir } from "../tasks/prepare.js";

/** What `etcdutl snapshot status -w json` reports. */
export interface SnapshotStatus {
  hash: number;
  revision: number;
  totalKey: number;
  totalSize: number;
  version: string;
}

/** bbolt pages are 512-byte multiples; `etcdctl snapshot save` appends a sha256 (32 bytes) of the rest. */
const HASH_SIZE = 32;
const PAGE = 512;

export type Integrity = { ok: true } | { ok: false; why: string };

/**
 * Checks the sha256 that `etcdctl snapshot save` appends to a snapshot, as `etcdutl snapshot restore`
 * does (it refuses a mismatch). `snapshot status` alone reads the database pages it needs and can
 * miss a damaged byte elsewhere; this check covers every byte. Pure.
 */
export function snapshotIntegrity(data: Buffer): Integrity {
  if (data.length === 0) return { ok: false, why: "the file is empty" };
  const rest = data.length % PAGE;
  if (rest === 0) {
    return { ok: false, why: "it has no integrity hash (a copy of a data directory's db file, not a snapshot saved by etcdctl or kubeprov)" };
  }
  if (rest !== HASH_SIZE || data.length < PAGE + HASH_SIZE) return { ok: false, why: `its size (${data.length} bytes) is not a snapshot's: truncated or not an etcd snapshot` };
  const body = data.subarray(0, data.length - HASH_SIZE);
  const want = data.subarray(data.length - HASH_SIZE);
  const got = createHash("sha256").update(body).digest();
  if (!got.equals(want)) return { ok: false, why: "its integrity hash does not match its content (damaged)" };
  return { ok: true };
}

/** Parses `etcdutl snapshot status -w json`. Pure. */
export function parseSnapshotStatus(text: string): SnapshotStatus {
  const v = JSON.parse(text.trim()) as Partial<SnapshotStatus>;
  for (const k of ["hash", "revision", "totalKey", "totalSize"] as const) {
    if (typeof v[k] !== "number") throw new Error(`etcdutl snapshot status: no ${k} in its answer`);
  }
  return { hash: v.hash!, revision: v.revision!, totalKey: v.totalKey!, totalSize: v.totalSize!, version: String(v.version ?? "") };
}

/** "revision 1234, 567 keys, 4.2 MiB (etcd 3.7.0)". Pure. */
export function describeStatus(s: SnapshotStatus): string {
  return `revision ${s.revision}, ${s.totalKey} keys, ${formatBytes(s.totalSize)}${s.version ? ` (etcd ${s.version})` : ""}`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** etcdutl on this machine: the cluster's artifact bundle has it; else one on PATH. */
export function localEtcdutl(cluster: Cluster): string {
  const inBundle = join(artifactsDir(cluster), "bin", "etcdutl");
  return existsSync(inBundle) ? inBundle : "etcdutl";
}

/** `etcdutl snapshot status` on a local file; throws with etcdutl's own last line when it refuses it. */
export async function localSnapshotStatus(etcdutl: string, file: string): Promise<SnapshotStatus> {
  const r = await execa(etcdutl, ["snapshot", "status", file, "-w", "json"], { reject: false, timeout: 60_000 });
  if ((r as { code?: string }).code === "ENOENT") {
    throw new RuntimeFailure(`etcdutl not found on this machine (looked in the artifact bundle and on PATH)`, "build the bundle with `npm run artifacts` (scripts/build-bundle.sh), or put etcdutl on PATH");
  }
  if (r.exitCode !== 0) throw new SnapshotRefused(String(r.stderr || r.stdout).trim().split("\n").pop() ?? `exit ${r.exitCode}`);
  return parseSnapshotStatus(String(r.stdout));
}

/** etcdutl refused a snapshot (the message is etcdutl's, never the file's content). */
export class SnapshotRefused extends Error {}

/**
 * Reads and checks a local snapshot before anything else happens: missing, unreadable, damaged or
 * refused by etcdutl is a UsageError (exit 2) naming the file and why.
 */
export async function readCheckedSnapshot(file: string, etcdutl: string): Promise<{ data: Buffer; status: SnapshotStatus }> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "EISDIR" ? "is a directory" : (e as Error).message;
    throw new UsageError(`snapshot ${file}: ${why}`);
  }
  const integrity = snapshotIntegrity(data);
  if (!integrity.ok) throw new UsageError(`snapshot ${file} is refused: ${integrity.why}`);
  try {
    return { data, status: await localSnapshotStatus(etcdutl, file) };
  } catch (e) {
    if (e instanceof SnapshotRefused) throw new UsageError(`snapshot ${file} is refused by etcdutl snapshot status: ${e.message}`);
    throw e;
  }
}

/**
 * Writes a snapshot to `file` with mode 0600, atomically: a private temp file next to it, checked
 * (integrity hash and etcdutl snapshot status), then renamed over `file`. A snapshot that fails the
 * check never reaches `file`.
 */
export async function writeCheckedSnapshot(file: string, data: Buffer, etcdutl: string): Promise<SnapshotStatus> {
  const tmp = join(dirname(file), `.${basename(file)}.${randomBytes(6).toString("hex")}.tmp`);
  let fh;
  try {
    fh = await open(tmp, "wx", 0o600);
  } catch (e) {
    throw new UsageError(`cannot write ${file}: ${(e as Error).message}`);
  }
  try {
    try {
      await fh.writeFile(data);
      await fh.sync();
    } finally {
      await fh.close();
    }
    // open's mode is filtered by the umask; the snapshot's mode is 0600 whatever it is.
    await chmod(tmp, 0o600);
    const integrity = snapshotIntegrity(data);
    if (!integrity.ok) throw new RuntimeFailure(`the snapshot copied from the host is unusable: ${integrity.why}`);
    let status: SnapshotStatus;
    try {
      status = await localSnapshotStatus(etcdutl, tmp);
    } catch (e) {
      if (e instanceof SnapshotRefused) throw new RuntimeFailure(`etcdutl snapshot status refuses the snapshot copied from the host: ${e.message}`);
      throw e;
    }
    await rename(tmp, file);
    return status;
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}
