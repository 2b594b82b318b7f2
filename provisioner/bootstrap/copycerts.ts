// The shared control-plane material (CAs and their keys, sa.key, sa.pub) carried in the Secret
// kube-system/kubeadm-certs, in kubeadm's format, so that a control plane can join with a
// certificate key instead of having the files copied to it (`init --upload-certs`,
// `join --certificate-key`). Pure: no API calls here.
//
// The format, as kubeadm reads and writes it:
//   - the certificate key is 32 random bytes written as 64 hexadecimal characters;
//   - each file is sealed with AES-256-GCM under that key, a fresh 12-byte nonce each, stored as
//     nonce || ciphertext || 16-byte tag (what Go's gcm.Seal(nonce, nonce, data, nil) returns);
//   - the Secret's data keys are the file paths relative to the cert dir with "/" made "-"
//     (etcd/ca.crt is etcd-ca.crt);
//   - the Secret is owned (ownerReference, controller) by a bootstrap token Secret that lives 2 h
//     and grants nothing (no usages, no groups): when the token expires, the token cleaner deletes
//     it and the garbage collector deletes kubeadm-certs with it;
//   - a Role lets the bootstrap token group get that one Secret.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { UsageError } from "../errors.js";
import { renderTemplate } from "../render.js";
import type { SharedCaSet } from "../pki/plan.js";
import type { KubeObject } from "./api.js";
import { objectsFromYaml } from "./manifests.js";
import { BOOTSTRAP_TOKEN_SECRET_PREFIX, DEFAULT_TOKEN_GROUP, tokenSecret, type BootstrapToken } from "./token.js";

export const CERTS_SECRET = "kubeadm-certs";
export const CERTS_ROLE = "kubeadm:kubeadm-certs";
/** Lifetime of the token that owns kubeadm-certs (kubeadm's DefaultCertTokenDuration). */
export const CERTS_TOKEN_TTL_MS = 2 * 3600 * 1000;
export const CERTS_TOKEN_DESCRIPTION = "Proxy for managing TTL for the kubeadm-certs secret";
/** The environment variable that carries a certificate key without putting it in argv. */
export const CERTIFICATE_KEY_ENV = "KUBEPROV_CERTIFICATE_KEY";
export const CERTIFICATE_KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;

/** A fresh certificate key (64 hex characters) from the platform's CSPRNG. */
export function generateCertificateKey(): string {
  return randomBytes(CERTIFICATE_KEY_BYTES).toString("hex");
}

/** The 32 key bytes; a UsageError naming `what` (never echoing the value) unless it is 64 hex characters. */
export function requireCertificateKey(text: string, what = "--certificate-key"): Buffer {
  if (!/^[0-9a-fA-F]{64}$/.test(text.trim()))
    throw new UsageError(`${what}: a certificate key is 32 bytes written as exactly 64 hexadecimal characters (got ${text.trim().length} characters)`);
  return Buffer.from(text.trim(), "hex");
}

/** AES-256-GCM: nonce || ciphertext || tag, as kubeadm's EncryptBytes. */
export function encryptBytes(data: Buffer, key: Buffer, nonce: Buffer = randomBytes(NONCE_BYTES)): Buffer {
  const c = createCipheriv("aes-256-gcm", key, nonce);
  return Buffer.concat([nonce, c.update(data), c.final(), c.getAuthTag()]);
}

/** The failure to open sealed data: a wrong key, or data that was changed. */
export class DecryptError extends Error {}

/** Opens what encryptBytes sealed; DecryptError when the key is wrong or the data was changed. */
export function decryptBytes(sealed: Buffer, key: Buffer): Buffer {
  if (sealed.length < NONCE_BYTES + TAG_BYTES) throw new DecryptError("sealed data too short");
  const d = createDecipheriv("aes-256-gcm", key, sealed.subarray(0, NONCE_BYTES));
  d.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
  try {
    return Buffer.concat([d.update(sealed.subarray(NONCE_BYTES, sealed.length - TAG_BYTES)), d.final()]);
  } catch {
    throw new DecryptError("message authentication failed");
  }
}

/** The Secret data key of a cert-dir relative path (kubeadm's: "/" becomes "-"). */
export function secretKeyOf(relPath: string): string {
  return relPath.replaceAll("/", "-");
}

/** The proxy token that owns kubeadm-certs: 2 h, no usages, no groups (it authenticates nobody). */
export function certsOwnerTokenSecret(token: BootstrapToken, now?: Date): KubeObject {
  return tokenSecret(token, { ttlMs: CERTS_TOKEN_TTL_MS, now, description: CERTS_TOKEN_DESCRIPTION, usages: [], groups: [] }) as KubeObject;
}

/** The Secret kube-system/kubeadm-certs: every file of `files` sealed under `key`, owned by the token Secret. */
export function certsSecret(files: SharedCaSet, key: Buffer, owner: { tokenId: string; uid: string }): KubeObject {
  const data: Record<string, string> = {};
  for (const [rel, content] of [...files].sort(([a], [b]) => a.localeCompare(b))) data[secretKeyOf(rel)] = encryptBytes(content, key).toString("base64");
  return {
    apiVersion: "v1",
    kind: "Secret",
    metadata: {
      name: CERTS_SECRET,
      namespace: "kube-system",
      ownerReferences: [{ apiVersion: "v1", kind: "Secret", name: `${BOOTSTRAP_TOKEN_SECRET_PREFIX}${owner.tokenId}`, uid: owner.uid, controller: true, blockOwnerDeletion: true }],
    },
    type: "Opaque",
    data,
  };
}

/** The Role and RoleBinding that let the bootstrap token group get kubeadm-certs (and nothing else). */
export function certsRbacObjects(): KubeObject[] {
  return objectsFromYaml(
    renderTemplate("addons/kubeadm-certs-rbac.yaml", { role: CERTS_ROLE, secret: CERTS_SECRET, tokenGroup: DEFAULT_TOKEN_GROUP }),
    "templates/addons/kubeadm-certs-rbac.yaml",
  );
}

/**
 * The files of a kubeadm-certs Secret as the API returns it (base64 `data`), opened with `key`,
 * by cert-dir relative path (`relPaths`: the ones this cluster shares). All or nothing: a wrong key
 * throws DecryptError before anything is returned; a missing entry throws Error naming it.
 */
export function openCertsSecret(secret: { data?: Record<string, string> }, key: Buffer, relPaths: string[]): SharedCaSet {
  const out: SharedCaSet = new Map();
  for (const rel of relPaths) {
    const b64 = secret.data?.[secretKeyOf(rel)];
    if (b64 === undefined) throw new Error(`Secret kube-system/${CERTS_SECRET} has no ${secretKeyOf(rel)}`);
    const sealed = Buffer.from(b64, "base64");
    // kubeadm stores an empty value for a file that did not exist on the first control plane.
    if (sealed.length) out.set(rel, decryptBytes(sealed, key));
  }
  return out;
}
