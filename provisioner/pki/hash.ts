// kubeadm's discovery-token-ca-cert-hash: SHA-256 of the CA certificate's DER SubjectPublicKeyInfo.
import { createHash, X509Certificate } from "node:crypto";

export function caCertHash(caCertPem: string | Buffer): string {
  const spki = new X509Certificate(caCertPem).publicKey.export({ type: "spki", format: "der" });
  return `sha256:${createHash("sha256").update(spki).digest("hex")}`;
}
