// RSA keys. Generation runs in the platform's native crypto (node:crypto's async generateKeyPair,
// on libuv's thread pool, so several keys are made at once); node-forge gets the public key for
// the certificates it builds. Private keys are written as PKCS#1 "RSA PRIVATE KEY", as kubeadm does.
import { createPrivateKey, createPublicKey, generateKeyPair, type KeyObject } from "node:crypto";
import forge from "node-forge";

export interface RsaKey {
  /** Native key, used for signing and for checks. */
  privateKey: KeyObject;
  /** PEM, PKCS#1 ("RSA PRIVATE KEY"). */
  privatePem: string;
  /** SubjectPublicKeyInfo PEM ("PUBLIC KEY"), as sa.pub. */
  publicPem: string;
  /** node-forge public key, for certificate building. */
  forgePublic: forge.pki.rsa.PublicKey;
}

export function newRsaKey(bits: number): Promise<RsaKey> {
  return new Promise((resolve, reject) => {
    generateKeyPair(
      "rsa",
      { modulusLength: bits, publicExponent: 0x10001, publicKeyEncoding: { type: "spki", format: "pem" }, privateKeyEncoding: { type: "pkcs1", format: "pem" } },
      (err, publicPem, privatePem) => {
        if (err) return reject(err);
        resolve({ privateKey: createPrivateKey(privatePem), privatePem, publicPem, forgePublic: forge.pki.publicKeyFromPem(publicPem) as forge.pki.rsa.PublicKey });
      },
    );
  });
}

/** Parses an existing private key (PKCS#1 or PKCS#8 PEM). Throws a plain Error describing the problem. */
export function parsePrivateKey(pem: Buffer | string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch {
    throw new Error("is not a PEM private key");
  }
}

/** An existing RSA key in the same form newRsaKey returns (for signing with an existing CA key). */
export function rsaKeyFrom(pem: Buffer | string): RsaKey {
  const privateKey = parsePrivateKey(pem);
  if (privateKey.asymmetricKeyType !== "rsa") throw new Error(`is a ${privateKey.asymmetricKeyType} key; kubeprov signs with RSA keys only`);
  const publicPem = createPublicKey(privateKey).export({ type: "spki", format: "pem" }).toString();
  return {
    privateKey,
    privatePem: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    publicPem,
    forgePublic: forge.pki.publicKeyFromPem(publicPem) as forge.pki.rsa.PublicKey,
  };
}
