// Small pure helpers for the names and addresses that go into certificates: IP parsing to bytes
// (for comparing SANs whatever their spelling), DNS-name checks, the first address of a subnet,
// and host:port splitting for controlPlaneEndpoint.
import { isIP } from "node:net";

/** The address as bytes (4 or 16), or undefined when the text is not an IP address. */
export function ipBytes(text: string): Buffer | undefined {
  const family = isIP(text);
  if (family === 4) return Buffer.from(text.split(".").map((p) => Number(p)));
  if (family !== 6) return undefined;
  let s = text;
  let tail: number[] = [];
  if (s.includes(".")) {
    const cut = s.lastIndexOf(":");
    tail = s.slice(cut + 1).split(".").map((p) => Number(p));
    s = s.slice(0, cut + 1) + "0:0";
  }
  const [head, rest] = s.split("::");
  const groups = (h: string | undefined) => (h ? h.split(":").filter((g) => g !== "").map((g) => parseInt(g, 16)) : []);
  const a = groups(head);
  const b = rest === undefined ? [] : groups(rest);
  const fill = rest === undefined ? [] : new Array(8 - a.length - b.length).fill(0);
  const all = [...a, ...fill, ...b];
  const out = Buffer.alloc(16);
  all.forEach((g, i) => out.writeUInt16BE(g, i * 2));
  if (tail.length === 4) Buffer.from(tail).copy(out, 12);
  return out;
}

/** Canonical text of an IP address (IPv4 dotted, IPv6 lowercase and compressed), for comparisons and messages. */
export function canonicalIP(text: string): string | undefined {
  const b = ipBytes(text);
  if (!b) return undefined;
  if (b.length === 4) return [...b].join(".");
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // Compress the longest run of zero groups (at least two).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === "0") j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(":");
  return `${groups.slice(0, best).join(":")}::${groups.slice(best + bestLen).join(":")}`;
}

/** A DNS-1123 subdomain, optionally a wildcard ("*.example.com"), as kubeadm accepts in certSANs. */
export function isDnsName(name: string): boolean {
  const n = name.startsWith("*.") ? name.slice(2) : name;
  if (n.length === 0 || n.length > 253) return false;
  return n.split(".").every((l) => /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(l));
}

/** The address at `index` inside a CIDR block (index 1 = the kubernetes Service IP of the service subnet). */
export function indexedIP(cidr: string, index: number): string {
  const [base, prefixText] = cidr.trim().split("/");
  const bytes = base === undefined ? undefined : ipBytes(base);
  const prefix = Number(prefixText);
  if (!bytes || !Number.isInteger(prefix) || prefix < 0 || prefix > bytes.length * 8) {
    throw new Error(`${JSON.stringify(cidr)} is not a CIDR block`);
  }
  let v = BigInt(`0x${bytes.toString("hex")}`);
  const bits = BigInt(bytes.length * 8);
  const hostBits = bits - BigInt(prefix);
  v = (v >> hostBits) << hostBits;
  if (BigInt(index) >= 1n << hostBits) throw new Error(`${cidr} has no address number ${index}`);
  v += BigInt(index);
  const hex = v.toString(16).padStart(bytes.length * 2, "0");
  const out = Buffer.from(hex, "hex");
  return out.length === 4 ? [...out].join(".") : canonicalIP(formatV6(out))!;
}

function formatV6(b: Buffer): string {
  const g: string[] = [];
  for (let i = 0; i < 16; i += 2) g.push(b.readUInt16BE(i).toString(16));
  return g.join(":");
}

/** Splits "host:port", "[v6]:port", "host" or a bare IPv6 address. */
export function splitHostPort(endpoint: string, defaultPort: number): { host: string; port: number } {
  const e = endpoint.trim();
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(e);
  if (bracket) return { host: bracket[1]!, port: bracket[2] ? Number(bracket[2]) : defaultPort };
  if (isIP(e) === 6) return { host: e, port: defaultPort };
  const m = /^([^:]+)(?::(\d+))?$/.exec(e);
  if (!m) throw new Error(`${JSON.stringify(endpoint)} is not host or host:port`);
  return { host: m[1]!, port: m[2] ? Number(m[2]) : defaultPort };
}

/** https://host:port with IPv6 hosts in brackets. */
export function httpsURL(host: string, port: number): string {
  return `https://${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}
