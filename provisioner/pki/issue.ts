// Building certificates with node-forge. forge assembles and DER-encodes the TBSCertificate; the
// RSA signature over it is computed either by the platform's native crypto (default: node:crypto,
// about 0.3 ms) or by forge's own JavaScript RSA (signer "forge", about 40 ms a certificate).
import { randomBytes, sign as nativeSign } from "node:crypto";
import forge from "node-forge";
import { CA_KEY_USAGES, CERTIFICATE_BACKDATE_MS, LEAF_KEY_USAGES, type ExtKeyUsage, type SubjectAltNames } from "./certlist.js";
import type { RsaKey } from "./keys.js";

export type Signer = "native" | "forge";

export interface CertRequest {
  commonName: string;
  organizations: string[];
  altNames?: SubjectAltNames;
  extKeyUsages: ExtKeyUsage[];
  isCA: boolean;
  validityDays: number;
  /** The subject's key (its public half goes into the certificate). */
  key: RsaKey;
  now: Date;
  /** Never valid after this (a leaf does not outlive its CA). */
  notAfterLimit?: Date;
}

export interface Issuer {
  /** The CA certificate (forge), for its subject and key identifier. */
  cert: forge.pki.Certificate;
  key: RsaKey;
}

let signerDefault: Signer = process.env.KUBEPROV_PKI_SIGNER === "forge" ? "forge" : "native";
/** For the benchmark: choose how certificates are signed. */
export function setSigner(s: Signer): void {
  signerDefault = s;
}

function serialNumber(): string {
  const b = randomBytes(16);
  b[0] = b[0]! & 0x7f; // positive
  if (b[0] === 0) b[0] = 1; // no leading zero octet
  return b.toString("hex");
}

function subjectAttrs(commonName: string, organizations: string[]): forge.pki.CertificateField[] {
  return [...organizations.map((o) => ({ name: "organizationName", value: o })), { name: "commonName", value: commonName }];
}

/** Issues a certificate: self-signed when issuer is undefined (a CA), else signed by the issuer. Returns PEM. */
export function issueCertificate(req: CertRequest, issuer?: Issuer, signer: Signer = signerDefault): { pem: string; cert: forge.pki.Certificate } {
  const cert = forge.pki.createCertificate();
  cert.publicKey = req.key.forgePublic;
  cert.serialNumber = serialNumber();
  cert.validity.notBefore = new Date(Math.floor((req.now.getTime() - CERTIFICATE_BACKDATE_MS) / 1000) * 1000);
  let notAfter = new Date(Math.floor(req.now.getTime() / 1000) * 1000 + req.validityDays * 86_400_000);
  if (req.notAfterLimit && notAfter > req.notAfterLimit) notAfter = req.notAfterLimit;
  cert.validity.notAfter = notAfter;
  cert.setSubject(subjectAttrs(req.commonName, req.organizations));
  cert.setIssuer(issuer ? issuer.cert.subject.attributes : cert.subject.attributes);

  const usages = req.isCA ? CA_KEY_USAGES : LEAF_KEY_USAGES;
  const ski = forge.pki.getPublicKeyFingerprint(req.key.forgePublic, { type: "RSAPublicKey", md: forge.md.sha1.create() }).getBytes();
  const extensions: Record<string, unknown>[] = [
    { name: "keyUsage", critical: true, ...Object.fromEntries(usages.map((u) => [u, true])) },
  ];
  if (req.extKeyUsages.length) extensions.push({ name: "extKeyUsage", ...Object.fromEntries(req.extKeyUsages.map((u) => [u, true])) });
  extensions.push({ name: "basicConstraints", critical: true, cA: req.isCA });
  if (req.isCA) extensions.push({ name: "subjectKeyIdentifier", subjectKeyIdentifier: forge.util.bytesToHex(ski) });
  const aki = issuer ? issuerKeyIdentifier(issuer.cert) : undefined;
  if (aki) extensions.push({ name: "authorityKeyIdentifier", keyIdentifier: aki });
  // kubeadm's CAs carry their common name as a DNS SAN.
  const alt = req.altNames ?? (req.isCA ? { dns: [req.commonName], ips: [] } : undefined);
  if (alt && (alt.dns.length || alt.ips.length)) {
    extensions.push({ name: "subjectAltName", altNames: [...alt.dns.map((d) => ({ type: 2, value: d })), ...alt.ips.map((ip) => ({ type: 7, ip }))] });
  }
  cert.setExtensions(extensions);

  const signingKey = issuer ? issuer.key : req.key;
  if (signer === "forge") {
    cert.sign(forge.pki.privateKeyFromPem(signingKey.privatePem), forge.md.sha256.create());
  } else {
    // forge calls md.update(DER of the TBSCertificate), then key.sign(md): collect the bytes and sign natively.
    const parts: string[] = [];
    const md = { algorithm: "sha256", update: (b: string) => (parts.push(b), md) };
    const key = { sign: () => nativeSign("sha256", Buffer.from(parts.join(""), "binary"), signingKey.privateKey).toString("binary") };
    cert.sign(key as unknown as forge.pki.rsa.PrivateKey, md as unknown as forge.md.MessageDigest);
  }
  return { pem: toPem(cert), cert };
}

/** forge writes CRLF; files on Linux hosts (and kubeadm's) use LF. */
export function toPem(cert: forge.pki.Certificate): string {
  return forge.pki.certificateToPem(cert).replace(/\r\n/g, "\n");
}

function issuerKeyIdentifier(ca: forge.pki.Certificate): string | undefined {
  const ext = ca.getExtension("subjectKeyIdentifier") as { subjectKeyIdentifier?: string } | undefined;
  return ext?.subjectKeyIdentifier ? forge.util.hexToBytes(ext.subjectKeyIdentifier) : undefined;
}

/** Parses a CA certificate with forge (RSA only), for use as an issuer. */
export function forgeCertFromPem(pem: string | Buffer): forge.pki.Certificate {
  return forge.pki.certificateFromPem(pem.toString());
}
