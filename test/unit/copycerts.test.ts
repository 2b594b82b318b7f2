// The kubeadm-certs format: AES-256-GCM with the nonce in front and the tag behind (what Go's
// gcm.Seal(nonce, nonce, data, nil) returns, which kubeadm stores), the certificate key's
// validation, and the Secret, owner token and RBAC objects.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  CERTS_ROLE,
  certsOwnerTokenSecret,
  certsRbacObjects,
  certsSecret,
  DecryptError,
  decryptBytes,
  encryptBytes,
  generateCertificateKey,
  openCertsSecret,
  requireCertificateKey,
  secretKeyOf,
} from "../../provisioner/bootstrap/copycerts.js";
import { certificateKeyOption } from "../../provisioner/cli/options.js";
import { parseTokenSecret, isUsableJoinToken } from "../../provisioner/bootstrap/token.js";
import { sharedRelPaths } from "../../provisioner/pki/plan.js";
import { UsageError } from "../../provisioner/errors.js";

const KEY = Buffer.from("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f", "hex");
const NONCE = Buffer.from("0c0d0e0f1011121314151617", "hex");
const PLAIN = Buffer.from("-----BEGIN CERTIFICATE-----");
// Computed with Go 1.26's crypto/aes + crypto/cipher: gcm.Seal(nonce, nonce, PLAIN, nil).
const GO_SEALED = "0c0d0e0f1011121314151617b5d344f55234b9147e646896d4d972ae134aaeafa2381687b68fd747e2d02dd15cd3a1bc2fa73118f85c9b";

test("sealing with a given nonce gives Go's bytes: nonce || ciphertext || tag", () => {
  const sealed = encryptBytes(PLAIN, KEY, NONCE);
  assert.equal(sealed.toString("hex"), GO_SEALED);
  assert.equal(sealed.length, 12 + PLAIN.length + 16);
});

test("what Go sealed opens; a fresh nonce every time; round trip of a large file", () => {
  assert.deepEqual(decryptBytes(Buffer.from(GO_SEALED, "hex"), KEY), PLAIN);
  const data = Buffer.alloc(100_000, 7);
  const a = encryptBytes(data, KEY);
  const b = encryptBytes(data, KEY);
  assert.notDeepEqual(a.subarray(0, 12), b.subarray(0, 12));
  assert.deepEqual(decryptBytes(a, KEY), data);
});

test("a wrong key, a changed byte or short data fail to open (DecryptError)", () => {
  const sealed = encryptBytes(PLAIN, KEY);
  const other = Buffer.from(generateCertificateKey(), "hex");
  assert.throws(() => decryptBytes(sealed, other), DecryptError);
  const changed = Buffer.from(sealed);
  changed[15] ^= 1;
  assert.throws(() => decryptBytes(changed, KEY), DecryptError);
  assert.throws(() => decryptBytes(Buffer.alloc(20), KEY), DecryptError);
});

test("certificate key: exactly 64 hex characters; errors name the flag and never echo the value", () => {
  const k = generateCertificateKey();
  assert.match(k, /^[0-9a-f]{64}$/);
  assert.equal(requireCertificateKey(k).length, 32);
  assert.equal(requireCertificateKey(k.toUpperCase()).toString("hex"), k);
  for (const bad of [k.slice(1), k + "0", "z" + k.slice(1), "", "secret-" + k]) {
    assert.throws(
      () => requireCertificateKey(bad),
      (e: Error) => e instanceof UsageError && /--certificate-key/.test(e.message) && (bad.length < 8 || !e.message.includes(bad)),
    );
  }
  // The flag wins over the environment; the environment's variable is named when it is bad.
  assert.equal(certificateKeyOption(undefined, { KUBEPROV_CERTIFICATE_KEY: k }), k);
  assert.equal(certificateKeyOption(k, { KUBEPROV_CERTIFICATE_KEY: "bad" }), k);
  assert.equal(certificateKeyOption(undefined, {}), undefined);
  assert.throws(() => certificateKeyOption(undefined, { KUBEPROV_CERTIFICATE_KEY: "abc" }), /KUBEPROV_CERTIFICATE_KEY/);
});

test("Secret kubeadm-certs: kubeadm's data keys, every value sealed, owned by the token Secret", () => {
  const files = new Map(sharedRelPaths().map((rel) => [rel, Buffer.from(`contents of ${rel}`)]));
  const s = certsSecret(files, KEY, { tokenId: "abcdef", uid: "1234-uid" }) as unknown as {
    metadata: { name: string; namespace: string; ownerReferences: Record<string, unknown>[] };
    type: string;
    data: Record<string, string>;
  };
  assert.equal(s.metadata.name, "kubeadm-certs");
  assert.equal(s.metadata.namespace, "kube-system");
  assert.equal(s.type, "Opaque");
  assert.deepEqual(Object.keys(s.data).sort(), [
    "ca.crt",
    "ca.key",
    "etcd-ca.crt",
    "etcd-ca.key",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
    "sa.key",
    "sa.pub",
  ]);
  for (const v of Object.values(s.data)) assert.ok(!Buffer.from(v, "base64").toString().includes("contents of"), "sealed, not plain");
  assert.deepEqual(s.metadata.ownerReferences, [
    { apiVersion: "v1", kind: "Secret", name: "bootstrap-token-abcdef", uid: "1234-uid", controller: true, blockOwnerDeletion: true },
  ]);
  // Opened with the key: every file back, by its path.
  const opened = openCertsSecret(s, KEY, sharedRelPaths());
  assert.deepEqual([...opened.keys()].sort(), sharedRelPaths().sort());
  assert.equal(opened.get("etcd/ca.key")?.toString(), "contents of etcd/ca.key");
  // All or nothing with another key; a missing entry is named.
  assert.throws(() => openCertsSecret(s, Buffer.from(generateCertificateKey(), "hex"), sharedRelPaths()), DecryptError);
  const { ["sa.pub"]: _gone, ...rest } = s.data;
  assert.throws(() => openCertsSecret({ data: rest }, KEY, sharedRelPaths()), /sa\.pub/);
  assert.equal(secretKeyOf("etcd/ca.crt"), "etcd-ca.crt");
});

test("the owner token lives 2 h and authenticates nobody", () => {
  const now = new Date("2026-12-04T10:00:00Z");
  const info = parseTokenSecret(certsOwnerTokenSecret({ id: "abcdef", secret: "0123456789abcdef" }, now))!;
  assert.equal(info.expires?.toISOString(), "2026-12-04T12:00:00.000Z");
  assert.deepEqual(info.usages, []);
  assert.deepEqual(info.groups, []);
  assert.equal(isUsableJoinToken(info, now), false);
});

test("RBAC: only the bootstrap token group may get kubeadm-certs, and nothing else", () => {
  const [role, binding] = certsRbacObjects() as unknown as [
    { kind: string; metadata: { name: string; namespace: string }; rules: unknown[] },
    { kind: string; metadata: { name: string; namespace: string }; roleRef: unknown; subjects: unknown[] },
  ];
  assert.equal(role.kind, "Role");
  assert.equal(role.metadata.name, CERTS_ROLE);
  assert.equal(role.metadata.namespace, "kube-system");
  assert.deepEqual(role.rules, [{ apiGroups: [""], resources: ["secrets"], resourceNames: ["kubeadm-certs"], verbs: ["get"] }]);
  assert.equal(binding.kind, "RoleBinding");
  assert.deepEqual(binding.roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "kubeadm:kubeadm-certs" });
  assert.deepEqual(binding.subjects, [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "system:bootstrappers:kubeadm:default-node-token" }]);
});
