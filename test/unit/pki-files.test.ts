// Every file `kubeprov certs generate` writes, checked with openssl: chains, subjects, SANs,
// extended key usages, validity, key/cert pairs, modes under umask 000 and 022, kubeconfigs,
// and the CA hash against openssl's own computation.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";
import { homedir } from "node:os";
import { parse } from "yaml";
import { CLUSTER_YAML, certPubDer, certText, keyPubDer, openssl, runCli, subject, tmp, verify } from "./pki-support.js";

const dir = tmp("files");
const file = join(dir, "cluster.yaml");
writeFileSync(file, CLUSTER_YAML);
const pki = join(dir, "pki");
const first = runCli(["certs", "generate", "--cert-dir", pki, "--kubeconfig-dir", dir, "-f", file], { umask: "000" });

const LEAVES: Array<{ base: string; ca: string; subject: string; eku: string[]; sans?: string[] }> = [
  {
    base: "apiserver",
    ca: "ca",
    subject: "CN=kube-apiserver",
    eku: ["TLS Web Server Authentication"],
    sans: [
      "DNS:cp1",
      "DNS:kubernetes",
      "DNS:kubernetes.default",
      "DNS:kubernetes.default.svc",
      "DNS:kubernetes.default.svc.cluster.local",
      "DNS:api.example.test",
      "DNS:lb.example.test",
      "IP Address:10.96.0.1",
      "IP Address:10.213.0.10",
      "IP Address:10.0.0.99",
    ],
  },
  { base: "apiserver-kubelet-client", ca: "ca", subject: "CN=kube-apiserver-kubelet-client", eku: ["TLS Web Client Authentication"] },
  { base: "front-proxy-client", ca: "front-proxy-ca", subject: "CN=front-proxy-client", eku: ["TLS Web Client Authentication"] },
  { base: "apiserver-etcd-client", ca: "etcd/ca", subject: "CN=kube-apiserver-etcd-client", eku: ["TLS Web Client Authentication"] },
  { base: "etcd/healthcheck-client", ca: "etcd/ca", subject: "CN=kube-etcd-healthcheck-client", eku: ["TLS Web Client Authentication"] },
  ...["etcd/server", "etcd/peer"].map((base) => ({
    base,
    ca: "etcd/ca",
    subject: "CN=cp1",
    eku: ["TLS Web Server Authentication", "TLS Web Client Authentication"],
    sans: ["DNS:cp1", "DNS:localhost", "IP Address:10.213.0.10", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1"],
  })),
];

function sansOf(path: string): string[] {
  const m = /X509v3 Subject Alternative Name:\s*\n\s*(.+)\n/.exec(certText(path));
  return m ? m[1]!.split(", ").map((s) => s.trim()) : [];
}

test("certs generate succeeds and reports 16 created", () => {
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /node cp1: 16 created, 0 re-issued, 0 kept/);
});

test("CAs: self-signed, CA:TRUE, keyCertSign, 10 years, key matches", () => {
  for (const [base, cn] of [["ca", "kubernetes"], ["front-proxy-ca", "front-proxy-ca"], ["etcd/ca", "etcd-ca"]] as const) {
    const crt = join(pki, `${base}.crt`);
    assert.equal(subject(crt), `CN=${cn}`);
    const text = certText(crt);
    assert.match(text, /CA:TRUE/);
    assert.match(text, /Certificate Sign/);
    assert.ok(verify(crt, crt).ok, `${base} self-signed`);
    const { notBefore, notAfter } = dates(crt);
    const days = (notAfter.getTime() - notBefore.getTime()) / 86_400_000;
    assert.ok(days > 3649.99 && days < 3650.01, `${base}: ${days} days (10 years + 5 min backdate)`);
    assert.ok(Date.now() - notBefore.getTime() >= 4 * 60_000, "backdated by a few minutes");
    assert.deepEqual(certPubDer(readFileSync(crt)), keyPubDer(readFileSync(join(pki, `${base}.key`))));
  }
});

test("leaves: chain, subject, EKUs, SANs, validity, key pair", () => {
  for (const l of LEAVES) {
    const crt = join(pki, `${l.base}.crt`);
    const v = verify(join(pki, `${l.ca}.crt`), crt);
    assert.ok(v.ok, `${l.base} verifies against ${l.ca}: ${v.out}`);
    assert.equal(subject(crt), l.subject, l.base);
    const text = certText(crt);
    assert.match(text, /CA:FALSE/);
    assert.match(text, /Digital Signature, Key Encipherment/);
    const eku = /X509v3 Extended Key Usage:\s*\n\s*(.+)\n/.exec(text)![1]!.split(", ").map((s) => s.trim());
    assert.deepEqual(eku, l.eku, l.base);
    assert.deepEqual(sansOf(crt).sort(), (l.sans ?? []).sort(), `${l.base} SANs`);
    const { notBefore, notAfter } = dates(crt);
    const days = (notAfter.getTime() - notBefore.getTime()) / 86_400_000;
    assert.ok(days > 364.99 && days < 365.01, `${l.base}: ${days}`);
    assert.deepEqual(certPubDer(readFileSync(crt)), keyPubDer(readFileSync(join(pki, `${l.base}.key`))), `${l.base} key matches`);
    assert.match(readFileSync(join(pki, `${l.base}.key`), "utf8"), /^-----BEGIN RSA PRIVATE KEY-----\n/);
    assert.equal(openssl(["pkey", "-in", join(pki, `${l.base}.key`), "-noout", "-text"]).match(/Private-Key: \((\d+) bit/)![1], "2048");
  }
  // A leaf of one CA does not verify against another.
  assert.equal(verify(join(pki, "ca.crt"), join(pki, "etcd/server.crt")).ok, false);
});

test("every private key passes openssl's RSA consistency check (primes, CRT values)", () => {
  for (const base of ["ca", "front-proxy-ca", "etcd/ca", ...LEAVES.map((l) => l.base), "sa"]) {
    assert.equal(openssl(["rsa", "-in", join(pki, `${base}.key`), "-check", "-noout"]).trim(), "RSA key ok", base);
  }
});

test("sa.key / sa.pub are a pair", () => {
  const pub = readFileSync(join(pki, "sa.pub"), "utf8");
  assert.match(pub, /^-----BEGIN PUBLIC KEY-----/);
  const fromKey = openssl(["pkey", "-in", join(pki, "sa.key"), "-pubout"]);
  assert.equal(fromKey, pub);
});

test("kubeconfigs: user, groups, server URL, CA, embedded pair", () => {
  const want: Record<string, { subject: string; server: string }> = {
    "admin.conf": { subject: "CN=kubernetes-admin,O=kubeadm:cluster-admins", server: "https://api.example.test:6443" },
    "super-admin.conf": { subject: "CN=kubernetes-super-admin,O=system:masters", server: "https://api.example.test:6443" },
    "controller-manager.conf": { subject: "CN=system:kube-controller-manager", server: "https://10.213.0.10:6443" },
    "scheduler.conf": { subject: "CN=system:kube-scheduler", server: "https://10.213.0.10:6443" },
    "kubelet.conf": { subject: "CN=system:node:cp1,O=system:nodes", server: "https://10.213.0.10:6443" },
  };
  const caPem = readFileSync(join(pki, "ca.crt"), "utf8");
  for (const [name, w] of Object.entries(want)) {
    const doc = parse(readFileSync(join(dir, name), "utf8"));
    assert.equal(doc.clusters[0].cluster.server, w.server, name);
    assert.equal(doc.clusters[0].name, "demo");
    assert.equal(Buffer.from(doc.clusters[0].cluster["certificate-authority-data"], "base64").toString(), caPem);
    const cert = Buffer.from(doc.users[0].user["client-certificate-data"], "base64");
    const key = Buffer.from(doc.users[0].user["client-key-data"], "base64");
    const certFile = join(dir, `${name}.crt`);
    writeFileSync(certFile, cert);
    assert.ok(verify(join(pki, "ca.crt"), certFile).ok, name);
    assert.equal(subject(certFile), w.subject, name);
    assert.match(certText(certFile), /TLS Web Client Authentication/);
    assert.deepEqual(certPubDer(cert), keyPubDer(key), `${name} key matches`);
    const user = w.subject.split(",")[0]!.slice(3);
    assert.equal(doc["current-context"], `${user}@demo`);
  }
});

test("modes under umask 000: keys and kubeconfigs 0600, certs 0644", () => {
  checkModes(pki, dir);
});

test("modes under umask 022 too", () => {
  const d = tmp("umask022");
  const r = runCli(["certs", "generate", "--cert-dir", join(d, "pki"), "--kubeconfig-dir", d, "-f", file], { umask: "022" });
  assert.equal(r.code, 0, r.stderr);
  checkModes(join(d, "pki"), d);
});

test("ca-hash equals openssl's sha256 of the CA's SubjectPublicKeyInfo", () => {
  const r = runCli(["certs", "ca-hash", "--cert-dir", pki]);
  assert.equal(r.code, 0, r.stderr);
  const der = spawnSync("sh", ["-c", `openssl x509 -pubkey -noout -in ${join(pki, "ca.crt")} | openssl pkey -pubin -outform der | sha256sum`], { encoding: "utf8" });
  assert.equal(r.stdout.trim(), `sha256:${der.stdout.split(" ")[0]}`);
});

test("check-expiration lists every certificate and CA (text and JSON)", () => {
  const t = runCli(["certs", "check-expiration", "--cert-dir", pki, "--kubeconfig-dir", dir]);
  assert.equal(t.code, 0, t.stderr);
  assert.match(t.stdout, /^CERTIFICATE\s+EXPIRES\s+RESIDUAL TIME\s+CERTIFICATE AUTHORITY\s+EXTERNALLY MANAGED$/m);
  assert.match(t.stdout, /^apiserver\s+\w{3} \d\d, \d{4} \d\d:\d\d UTC\s+364d\s+ca\s+no$/m);
  assert.match(t.stdout, /^etcd-ca\s+.*\s+9y\s+no$/m);
  const j = JSON.parse(runCli(["certs", "check-expiration", "--cert-dir", pki, "--kubeconfig-dir", dir, "-o", "json"]).stdout);
  assert.equal(j.certificates.length, 12);
  assert.equal(j.certificateAuthorities.length, 3);
  const api = j.certificates.find((c: { name: string }) => c.name === "apiserver");
  assert.equal(new Date(api.expires).getTime(), dates(join(pki, "apiserver.crt")).notAfter.getTime());
});

test("kubectl reads admin.conf (when the bundle's kubectl exists)", (t) => {
  const kubectl = join(homedir(), ".cache/kubeprov/bundle/v1.37.2/bin/kubectl");
  if (!existsSync(kubectl)) return t.skip("no kubectl in the bundle");
  const r = spawnSync(kubectl, ["--kubeconfig", join(dir, "admin.conf"), "config", "view", "--raw", "-o", "jsonpath={.users[0].name} {.clusters[0].cluster.server}"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout, "kubernetes-admin https://api.example.test:6443");
});

function dates(path: string): { notBefore: Date; notAfter: Date } {
  const out = openssl(["x509", "-in", path, "-noout", "-dates"]);
  return { notBefore: new Date(/notBefore=(.+)/.exec(out)![1]!), notAfter: new Date(/notAfter=(.+)/.exec(out)![1]!) };
}

function checkModes(pkiDir: string, kcDir: string): void {
  const mode = (p: string) => (statSync(p).mode & 0o777).toString(8);
  for (const base of ["ca", "front-proxy-ca", "etcd/ca", "apiserver", "apiserver-kubelet-client", "front-proxy-client", "apiserver-etcd-client", "etcd/server", "etcd/peer", "etcd/healthcheck-client"]) {
    assert.equal(mode(join(pkiDir, `${base}.crt`)), "644", `${base}.crt`);
    assert.equal(mode(join(pkiDir, `${base}.key`)), "600", `${base}.key`);
  }
  assert.equal(mode(join(pkiDir, "sa.key")), "600");
  assert.equal(mode(join(pkiDir, "sa.pub")), "600");
  for (const k of ["admin.conf", "super-admin.conf", "controller-manager.conf", "scheduler.conf", "kubelet.conf"]) assert.equal(mode(join(kcDir, k)), "600", k);
  assert.equal(mode(join(pkiDir, "etcd")), "755");
}
