// known_hosts: parse, match and append, in OpenSSH's format (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT").
// Pure functions except appendKnownHost. A line is
//   [@revoked|@cert-authority] patterns keytype base64-key [comment]
// where patterns is a comma-separated list of host names or addresses (wildcards * and ?,
// negation with !), `[host]:port` for a port other than 22, or one hashed entry
// `|1|base64(salt)|base64(HMAC-SHA1(salt, host-or-[host]:port))`.
import { createHash, createHmac, randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";

export interface KnownHostEntry {
  /** 1-based line number in the file, for messages. */
  line: number;
  marker?: "revoked" | "cert-authority";
  /** The host patterns as written (one element for a hashed entry). */
  patterns: string[];
  hashed?: { salt: Buffer; hash: Buffer };
  keyType: string;
  /** The decoded public key blob (SSH wire format). */
  key: Buffer;
}

export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i].trim();
    if (!raw || raw.startsWith("#")) continue;
    const fields = raw.split(/\s+/);
    let marker: KnownHostEntry["marker"];
    if (fields[0].startsWith("@")) {
      const m = fields.shift()!;
      if (m === "@revoked") marker = "revoked";
      else if (m === "@cert-authority") marker = "cert-authority";
      else continue; // unknown marker: ignored, as OpenSSH does
    }
    if (fields.length < 3) continue;
    const [hostField, keyType, b64] = fields;
    let key: Buffer;
    try {
      key = Buffer.from(b64, "base64");
    } catch {
      continue;
    }
    if (key.length === 0) continue;
    const entry: KnownHostEntry = { line: i + 1, marker, patterns: [hostField], keyType, key };
    if (hostField.startsWith("|1|")) {
      const parts = hostField.split("|");
      if (parts.length !== 4) continue;
      entry.hashed = { salt: Buffer.from(parts[2], "base64"), hash: Buffer.from(parts[3], "base64") };
    } else {
      entry.patterns = hostField.split(",").filter(Boolean);
    }
    entries.push(entry);
  }
  return entries;
}

/** The name a host is recorded under: `host` on port 22, `[host]:port` otherwise. */
export function hostToken(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function globToRegExp(glob: string): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".");
  return new RegExp(`^${body}$`, "i");
}

function patternMatches(pattern: string, token: string): boolean {
  if (pattern.includes("*") || pattern.includes("?")) return globToRegExp(pattern).test(token);
  return pattern.toLowerCase() === token.toLowerCase();
}

export function hashHostToken(token: string, salt: Buffer): Buffer {
  return createHmac("sha1", salt).update(token).digest();
}

/** Does this entry name host:port? */
export function entryMatchesHost(entry: KnownHostEntry, host: string, port: number): boolean {
  const token = hostToken(host, port);
  if (entry.hashed) return hashHostToken(token, entry.hashed.salt).equals(entry.hashed.hash);
  let matched = false;
  for (const p of entry.patterns) {
    if (p.startsWith("!")) {
      if (patternMatches(p.slice(1), token)) return false;
    } else if (patternMatches(p, token)) {
      matched = true;
    }
  }
  return matched;
}

/** The key type written inside a public key blob (e.g. "ssh-ed25519"). */
export function keyTypeOf(blob: Buffer): string {
  if (blob.length < 4) return "unknown";
  const n = blob.readUInt32BE(0);
  if (n > blob.length - 4) return "unknown";
  return blob.subarray(4, 4 + n).toString("latin1");
}

/** OpenSSH's fingerprint form: "SHA256:" + unpadded base64 of the blob's SHA-256. */
export function fingerprint(blob: Buffer): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

export type HostKeyVerdict =
  | { status: "trusted"; entry: KnownHostEntry }
  | { status: "unknown" }
  /** The host is known with a key of the same type, and it is not this one. */
  | { status: "changed"; expected: KnownHostEntry[] }
  /** The host is known only with keys of other types. */
  | { status: "other-type"; knownTypes: string[]; expected: KnownHostEntry[] }
  | { status: "revoked"; entry: KnownHostEntry };

/** Decide about a presented host key. Pure. */
export function verifyHostKey(entries: KnownHostEntry[], host: string, port: number, blob: Buffer): HostKeyVerdict {
  const type = keyTypeOf(blob);
  for (const e of entries) {
    if (e.marker === "revoked" && e.key.equals(blob) && entryMatchesHost(e, host, port)) return { status: "revoked", entry: e };
  }
  const forHost = entries.filter((e) => !e.marker && entryMatchesHost(e, host, port));
  const same = forHost.find((e) => e.key.equals(blob));
  if (same) return { status: "trusted", entry: same };
  if (forHost.length === 0) return { status: "unknown" };
  const sameType = forHost.filter((e) => keyTypeOf(e.key) === type);
  if (sameType.length) return { status: "changed", expected: sameType };
  return { status: "other-type", knownTypes: [...new Set(forHost.map((e) => keyTypeOf(e.key)))], expected: forHost };
}

/** Key types recorded for host:port (to ask the server for those first, as OpenSSH does). */
export function knownKeyTypes(entries: KnownHostEntry[], host: string, port: number): string[] {
  return [...new Set(entries.filter((e) => !e.marker && entryMatchesHost(e, host, port)).map((e) => keyTypeOf(e.key)))];
}

/** Host key algorithms that produce keys of a type. */
export function algorithmsForKeyType(type: string): string[] {
  if (type === "ssh-rsa") return ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"];
  return [type];
}

export const DEFAULT_HOST_KEY_ALGORITHMS = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
  "ssh-rsa",
];

/** Host key algorithms in preference order: those of keys already known first. */
export function preferredHostKeyAlgorithms(known: string[]): string[] {
  const first = known.flatMap(algorithmsForKeyType).filter((a) => DEFAULT_HOST_KEY_ALGORITHMS.includes(a));
  return [...new Set([...first, ...DEFAULT_HOST_KEY_ALGORITHMS])];
}

/** One known_hosts line for host:port and a key blob; hashed (|1|salt|hmac) when asked. */
export function formatKnownHostLine(host: string, port: number, blob: Buffer, opts: { hashed?: boolean; salt?: Buffer } = {}): string {
  const token = hostToken(host, port);
  let name = token;
  if (opts.hashed) {
    const salt = opts.salt ?? randomBytes(20);
    name = `|1|${salt.toString("base64")}|${hashHostToken(token, salt).toString("base64")}`;
  }
  return `${name} ${keyTypeOf(blob)} ${blob.toString("base64")}`;
}

export function readKnownHostsFile(path: string): KnownHostEntry[] {
  if (!existsSync(path)) return [];
  return parseKnownHosts(readFileSync(path, "utf8"));
}

/**
 * Append one entry (creating the file 0600 and its directory 0700 when missing). One write with
 * O_APPEND, so parallel connections that accept new keys do not interleave lines.
 */
export function appendKnownHost(path: string, host: string, port: number, blob: Buffer, opts: { hashed?: boolean } = {}): string {
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  let prefix = "";
  if (existsSync(path)) {
    const text = readFileSync(path, "utf8");
    if (text.length && !text.endsWith("\n")) prefix = "\n";
  }
  const line = formatKnownHostLine(host, port, blob, opts);
  appendFileSync(path, `${prefix}${line}\n`, { mode: 0o600 });
  return line;
}
