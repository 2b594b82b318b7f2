// Reading existing certificates with the platform's X.509 parser (node:crypto X509Certificate):
// subject, SANs, extended key usages, validity, issuer and key checks. Pure: bytes in, facts out.
import { createPublicKey, X509Certificate, type KeyObject } from "node:crypto";
import type { ExtKeyUsage, SubjectAltNames } from "./certlist.js";
import { canonicalIP } from "./names.js";

export interface CertInfo {
  x509: X509Certificate;
  pem: string;
  commonName: string;
  organizations: string[];
  altNames: SubjectAltNames;
  extKeyUsages: string[];
  isCA: boolean;
  notBefore: Date;
  notAfter: Date;
}

const EKU_OIDS: Record<ExtKeyUsage, string> = { serverAuth: "1.3.6.1.5.5.7.3.1", clientAuth: "1.3.6.1.5.5.7.3.2" };

/** Parses the first certificate of a PEM file. Throws a plain Error describing the problem. */
export function parseCert(pem: Buffer | string): CertInfo {
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pem);
  } catch {
    throw new Error("is not a PEM certificate");
  }
  const subject = parseDN(x509.subject);
  return {
    x509,
    pem: pem.toString(),
    commonName: subject.CN?.[0] ?? "",
    organizations: subject.O ?? [],
    altNames: parseSAN(x509.subjectAltName),
    extKeyUsages: x509.keyUsage ?? [],
    isCA: x509.ca,
    notBefore: new Date(x509.validFrom),
    notAfter: new Date(x509.validTo),
  };
}

function parseDN(dn: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const line of dn.split("\n")) {
    const i = line.indexOf("=");
    if (i <= 0) continue;
    const k = line.slice(0, i);
    (out[k] ??= []).push(line.slice(i + 1));
  }
  return out;
}

function parseSAN(text: string | undefined): SubjectAltNames {
  const dns: string[] = [];
  const ips: string[] = [];
  for (const part of (text ?? "").split(", ")) {
    if (part.startsWith("DNS:")) dns.push(part.slice(4));
    else if (part.startsWith("IP Address:")) ips.push(canonicalIP(part.slice(11)) ?? part.slice(11));
  }
  return { dns, ips };
}

export function ekuOids(usages: ExtKeyUsage[]): string[] {
  return usages.map((u) => EKU_OIDS[u]);
}

/** cert was issued (name chaining) and signed (signature) by ca. */
export function signedBy(cert: CertInfo, ca: CertInfo): boolean {
  return cert.x509.checkIssued(ca.x509) && cert.x509.verify(ca.x509.publicKey);
}

/** The private key is the certificate's. */
export function keyMatches(cert: CertInfo, key: KeyObject): boolean {
  try {
    return cert.x509.checkPrivateKey(key);
  } catch {
    return false;
  }
}

/** The public key (PEM) is the private key's. */
export function publicKeyMatches(publicPem: Buffer | string, key: KeyObject): boolean {
  try {
    const a = createPublicKey(publicPem).export({ type: "spki", format: "der" });
    const b = createPublicKey(key).export({ type: "spki", format: "der" });
    return a.equals(b);
  } catch {
    return false;
  }
}

export function sameSet(a: string[], b: string[]): boolean {
  const sa = new Set(a);
  const sb = new Set(b);
  return sa.size === sb.size && [...sa].every((x) => sb.has(x));
}

/** What differs between a certificate and what the table wants (empty: nothing). */
export function subjectDifferences(
  info: CertInfo,
  want: { commonName: string; organizations: string[]; altNames?: SubjectAltNames; extKeyUsages: ExtKeyUsage[] },
): string[] {
  const diffs: string[] = [];
  if (info.commonName !== want.commonName) diffs.push(`CN ${info.commonName} -> ${want.commonName}`);
  if (!sameSet(info.organizations, want.organizations)) diffs.push(`O [${info.organizations.join(",")}] -> [${want.organizations.join(",")}]`);
  const alt = want.altNames ?? { dns: [], ips: [] };
  const addDns = alt.dns.filter((d) => !info.altNames.dns.includes(d));
  const delDns = info.altNames.dns.filter((d) => !alt.dns.includes(d));
  const addIp = alt.ips.filter((d) => !info.altNames.ips.includes(d));
  const delIp = info.altNames.ips.filter((d) => !alt.ips.includes(d));
  if (addDns.length || delDns.length || addIp.length || delIp.length) {
    const parts = [...addDns.map((d) => `+DNS:${d}`), ...addIp.map((d) => `+IP:${d}`), ...delDns.map((d) => `-DNS:${d}`), ...delIp.map((d) => `-IP:${d}`)];
    diffs.push(`SANs ${parts.join(" ")}`);
  }
  if (!sameSet(info.extKeyUsages, ekuOids(want.extKeyUsages))) diffs.push("extended key usages");
  return diffs;
}
