// Small, pure helpers for IP addresses and CIDR blocks (IPv4 and IPv6), on bigints.
// Used by the cluster-file validation and by tasks that derive addresses from subnets
// (the kubernetes Service IP is the 1st address of the service subnet, cluster DNS the 10th).
import { DNS1123_LABEL } from "../constants.js";

export type IPFamily = 4 | 6;

export interface IP {
  family: IPFamily;
  /** The address as an unsigned integer (32 or 128 bits). */
  value: bigint;
}

export interface CIDR {
  family: IPFamily;
  /** The network address (host bits cleared). */
  base: bigint;
  prefix: number;
  /** true when the text had host bits set (e.g. 10.244.0.1/16). */
  hostBitsSet: boolean;
  /** The text as given. */
  text: string;
}

const bitsOf = (f: IPFamily): number => (f === 4 ? 32 : 128);

/** Parses a dotted-quad IPv4 address (no leading zeros, as Go's net.ParseIP). */
export function parseIPv4(s: string): bigint | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  let v = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9]\d{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    v = (v << 8n) | BigInt(n);
  }
  return v;
}

/** Parses an IPv6 address ("::" compression and a trailing dotted IPv4 allowed; no zone). */
export function parseIPv6(s: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s)) return undefined;
  let tail: bigint[] = [];
  let text = s;
  // Trailing IPv4 (e.g. ::ffff:10.0.0.1) becomes two groups.
  const lastColon = text.lastIndexOf(":");
  if (text.includes(".")) {
    const v4 = parseIPv4(text.slice(lastColon + 1));
    if (v4 === undefined || lastColon < 0) return undefined;
    tail = [v4 >> 16n, v4 & 0xffffn];
    text = text.slice(0, lastColon + 1) + "0"; // placeholder group, dropped below
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const groups = (h: string): bigint[] | undefined => {
    if (h === "") return [];
    const out: bigint[] = [];
    for (const g of h.split(":")) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined;
      out.push(BigInt(`0x${g}`));
    }
    return out;
  };
  let head = groups(halves[0]);
  let rest = halves.length === 2 ? groups(halves[1]) : [];
  if (!head || !rest) return undefined;
  if (tail.length) {
    // Drop the placeholder group we put in place of the IPv4 part.
    if (halves.length === 2) rest = rest.slice(0, -1);
    else head = head.slice(0, -1);
  }
  const total = head.length + rest.length + tail.length;
  let all: bigint[];
  if (halves.length === 2) {
    if (total > 7) return undefined;
    all = [...head, ...Array<bigint>(8 - total).fill(0n), ...rest, ...tail];
  } else {
    if (total !== 8) return undefined;
    all = [...head, ...tail];
  }
  return all.reduce((acc, g) => (acc << 16n) | g, 0n);
}

export function parseIP(s: string): IP | undefined {
  const v4 = parseIPv4(s);
  if (v4 !== undefined) return { family: 4, value: v4 };
  const v6 = parseIPv6(s);
  if (v6 !== undefined) return { family: 6, value: v6 };
  return undefined;
}

export const isIP = (s: string): boolean => parseIP(s) !== undefined;
export const isIPv4 = (s: string): boolean => parseIPv4(s) !== undefined;
export const isIPv6 = (s: string): boolean => parseIPv6(s) !== undefined;

export function formatIP(ip: IP): string {
  if (ip.family === 4) {
    const v = ip.value;
    return [24n, 16n, 8n, 0n].map((s) => String((v >> s) & 0xffn)).join(".");
  }
  const groups: number[] = [];
  for (let i = 7; i >= 0; i--) groups.push(Number((ip.value >> BigInt(i * 16)) & 0xffffn));
  // RFC 5952: compress the longest run (>= 2) of zero groups, the first one on a tie.
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(":");
  return `${hex.slice(0, best).join(":")}::${hex.slice(best + bestLen).join(":")}`;
}

/** Parses "a.b.c.d/n" or "x::/n". Host bits may be set (reported in hostBitsSet). */
export function parseCIDR(s: string): CIDR | undefined {
  const m = /^([^/]+)\/(\d{1,3})$/.exec(s.trim());
  if (!m) return undefined;
  const ip = parseIP(m[1]);
  if (!ip) return undefined;
  const prefix = Number(m[2]);
  const bits = bitsOf(ip.family);
  if (prefix > bits || (m[2].length > 1 && m[2].startsWith("0"))) return undefined;
  const mask = prefixMask(ip.family, prefix);
  const base = ip.value & mask;
  return { family: ip.family, base, prefix, hostBitsSet: base !== ip.value, text: s };
}

function prefixMask(family: IPFamily, prefix: number): bigint {
  const bits = bitsOf(family);
  const all = (1n << BigInt(bits)) - 1n;
  return prefix === 0 ? 0n : (all >> BigInt(bits - prefix)) << BigInt(bits - prefix);
}

function toCIDR(c: CIDR | string): CIDR {
  if (typeof c !== "string") return c;
  const p = parseCIDR(c);
  if (!p) throw new Error(`invalid CIDR ${JSON.stringify(c)}`);
  return p;
}

function toIP(a: IP | string): IP {
  if (typeof a !== "string") return a;
  const p = parseIP(a);
  if (!p) throw new Error(`invalid IP address ${JSON.stringify(a)}`);
  return p;
}

/** The number of addresses in the block. */
export function cidrSize(cidr: CIDR | string): bigint {
  const c = toCIDR(cidr);
  return 1n << BigInt(bitsOf(c.family) - c.prefix);
}

/** The network address as text, e.g. "10.244.0.0/16" for "10.244.3.7/16". */
export function canonicalCIDR(cidr: CIDR | string): string {
  const c = toCIDR(cidr);
  return `${formatIP({ family: c.family, value: c.base })}/${c.prefix}`;
}

/** Does the block contain the address? (false when the families differ) */
export function cidrContains(cidr: CIDR | string, ip: IP | string): boolean {
  const c = toCIDR(cidr);
  const a = toIP(ip);
  if (c.family !== a.family) return false;
  return (a.value & prefixMask(c.family, c.prefix)) === c.base;
}

/** Do the two blocks share any address? (false when the families differ) */
export function cidrsOverlap(a: CIDR | string, b: CIDR | string): boolean {
  const x = toCIDR(a);
  const y = toCIDR(b);
  if (x.family !== y.family) return false;
  const p = Math.min(x.prefix, y.prefix);
  const m = prefixMask(x.family, p);
  return (x.base & m) === (y.base & m);
}

/**
 * The n-th address of the block (0 is the network address itself), as text.
 * nthAddress("10.96.0.0/12", 1) = "10.96.0.1" (the kubernetes Service), 10 = "10.96.0.10" (cluster DNS).
 */
export function nthAddress(cidr: CIDR | string, n: number | bigint): string {
  const c = toCIDR(cidr);
  const i = BigInt(n);
  if (i < 0n || i >= cidrSize(c)) throw new Error(`${c.text} has no address number ${i}`);
  return formatIP({ family: c.family, value: c.base + i });
}

/** Splits a comma-separated list ("10.244.0.0/16,fd00:10:244::/56", kubeadm's dual-stack form). */
export function splitList(s: string): string[] {
  return s
    .split(",")
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

/** A DNS-1123 subdomain: lowercase labels of [a-z0-9-], each starting and ending alphanumeric, at most 253 chars. */
export function isDNSName(s: string): boolean {
  if (s.length === 0 || s.length > 253) return false;
  return s.split(".").every((l) => DNS1123_LABEL.test(l));
}

/** A DNS name for a certificate SAN: as isDNSName, and "*." allowed as the first label. */
export function isSANDNSName(s: string): boolean {
  return isDNSName(s.startsWith("*.") ? s.slice(2) : s);
}

export interface HostPort {
  host: string;
  port: number;
  /** "ip" when host is an IPv4/IPv6 address, "dns" for a name. */
  kind: "ip" | "dns";
}

/** Parses "host:port" with an IPv4 address, "[IPv6]" or a DNS name, and a port 1-65535. */
export function parseHostPort(s: string): HostPort | { error: string } {
  let host: string;
  let portText: string;
  if (s.startsWith("[")) {
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(s);
    if (!m) return { error: "must be host:port, with an IPv6 address in brackets ([fd00::1]:6443)" };
    host = m[1];
    portText = m[2];
    if (!isIPv6(host)) return { error: `${JSON.stringify(host)} is not an IPv6 address` };
  } else {
    const i = s.lastIndexOf(":");
    if (i < 0) return { error: "must be host:port (the port is missing)" };
    host = s.slice(0, i);
    portText = s.slice(i + 1);
    if (host.includes(":")) return { error: "must be host:port; write an IPv6 address in brackets ([fd00::1]:6443)" };
    if (host === "") return { error: "must be host:port (the host is missing)" };
  }
  if (!/^\d{1,5}$/.test(portText) || Number(portText) < 1 || Number(portText) > 65535)
    return { error: `port ${JSON.stringify(portText)} is not a number from 1 to 65535` };
  const port = Number(portText);
  if (isIP(host)) return { host, port, kind: "ip" };
  if (/^[\d.]+$/.test(host)) return { error: `${JSON.stringify(host)} is not a valid IPv4 address` };
  if (!isDNSName(host.toLowerCase())) return { error: `${JSON.stringify(host)} is neither an IP address nor a DNS name` };
  return { host, port, kind: "dns" };
}
