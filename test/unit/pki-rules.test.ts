// The keep / re-issue / refuse rules of the PKI, on real files: idempotence byte for byte, a new SAN
// re-issues only the API server certificate from the same CA, leaves near expiry are re-issued,
// foreign leaves and broken CA pairs are errors with nothing written, bring-your-own and external
// CAs, shared CAs for additional control planes, renewal, and bad input.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync, cpSync } from "node:fs";
import { join } from "node:path";
import { pkiContext, type PkiContext } from "../../provisioner/pki/certlist.js";
import { ensurePki, PkiStateError } from "../../provisioner/pki/ensure.js";
import { FsStore } from "../../provisioner/pki/store.js";
import { sharedRelPaths, type SharedCaSet } from "../../provisioner/pki/plan.js";
import { ConfigError } from "../../provisioner/errors.js";
import type { ClusterInput } from "../../provisioner/spec/schema.js";
import { CLUSTER_YAML, certText, cluster, fingerprint, openssl, runCli, subject, tmp, verify } from "./pki-support.js";

const store = new FsStore();

function ctxFor(dir: string, spec: Partial<ClusterInput["spec"]> = {}, node?: string): PkiContext {
  return pkiContext(cluster(spec), node, { certDir: join(dir, "pki"), kubeconfigDir: dir });
}

async function fresh(name: string, spec: Partial<ClusterInput["spec"]> = {}): Promise<{ dir: string; ctx: PkiContext }> {
  const dir = tmp(name);
  const ctx = ctxFor(dir, spec);
  await ensurePki(store, ctx);
  return { dir, ctx };
}

function changedFiles(before: Record<string, string>, after: Record<string, string>): string[] {
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter((k) => before[k] !== after[k]).sort();
}

async function assertRefused(p: Promise<unknown>, dir: string, before: Record<string, string>, pattern: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof PkiStateError, `PkiStateError, got ${e}`);
    const text = `${(e as PkiStateError).message}\n${(e as PkiStateError).pkiProblems.join("\n")}`;
    assert.match(text, pattern);
    return true;
  });
  assert.deepEqual(fingerprint(dir), before, "nothing written");
}

test("second run keeps every file byte for byte", async () => {
  const { dir, ctx } = await fresh("idem");
  const before = fingerprint(dir);
  assert.equal(Object.keys(before).length, 27);
  const r = await ensurePki(store, ctx);
  assert.ok(r.plan.decisions.every((d) => d.action === "keep"), JSON.stringify(r.plan.decisions.filter((d) => d.action !== "keep")));
  assert.equal(r.written.length, 0);
  assert.deepEqual(fingerprint(dir), before);
  // The CLI says so too.
  const f = join(dir, "cluster.yaml");
  writeFileSync(f, CLUSTER_YAML);
});

test("a new extra SAN re-issues only the API server certificate, from the same CA", async () => {
  const { dir } = await fresh("san");
  const before = fingerprint(dir);
  const r = await ensurePki(store, ctxFor(dir, { controlPlane: { certSANs: ["203.0.113.7", "new.example.test"] } }));
  const re = r.plan.decisions.filter((d) => d.action !== "keep");
  assert.deepEqual(re.map((d) => [d.name, d.action]), [["apiserver", "reissue"]]);
  assert.match(re[0]!.reason, /\+DNS:new\.example\.test/);
  assert.deepEqual(changedFiles(before, fingerprint(dir)), ["pki/apiserver.crt", "pki/apiserver.key"]);
  const crt = join(dir, "pki/apiserver.crt");
  assert.ok(verify(join(dir, "pki/ca.crt"), crt).ok);
  assert.match(certText(crt), /DNS:new\.example\.test/);
  assert.match(certText(crt), /IP Address:203\.0\.113\.7/);
});

test("a new controlPlaneEndpoint re-issues the API server certificate and the kubeconfigs that name it", async () => {
  const { dir } = await fresh("endpoint");
  const before = fingerprint(dir);
  const r = await ensurePki(store, ctxFor(dir, { controlPlaneEndpoint: "10.213.0.100:8443" }));
  assert.deepEqual(r.plan.decisions.filter((d) => d.action !== "keep").map((d) => d.name).sort(), ["admin.conf", "apiserver", "super-admin.conf"]);
  assert.deepEqual(changedFiles(before, fingerprint(dir)), ["admin.conf", "pki/apiserver.crt", "pki/apiserver.key", "super-admin.conf"]);
  assert.match(readFileSync(join(dir, "admin.conf"), "utf8"), /server: https:\/\/10\.213\.0\.100:8443/);
});

test("leaves expiring within the renewal window are re-issued; CAs are kept", async () => {
  const { dir } = await fresh("expiry", { pki: { certificateValidityDays: 20, renewBeforeDays: 0 } });
  const before = fingerprint(dir);
  const r = await ensurePki(store, ctxFor(dir, { pki: { certificateValidityDays: 365, renewBeforeDays: 30 } }));
  const byAction = (a: string) => r.plan.decisions.filter((d) => d.action === a).map((d) => d.name).sort();
  assert.deepEqual(byAction("keep"), ["ca", "etcd-ca", "front-proxy-ca", "sa"]);
  assert.equal(byAction("reissue").length, 12);
  assert.ok(r.plan.decisions.filter((d) => d.action === "reissue").every((d) => /within the renewal window \(30 days\)/.test(d.reason)));
  const changed = changedFiles(before, fingerprint(dir));
  assert.ok(!changed.some((f) => /(^|\/)(ca|front-proxy-ca)\.(crt|key)$|sa\./.test(f)), changed.join(" "));
  const end = new Date(/notAfter=(.+)/.exec(openssl(["x509", "-in", join(dir, "pki/apiserver.crt"), "-noout", "-enddate"]))![1]!);
  assert.ok(end.getTime() - Date.now() > 360 * 86_400_000);
  assert.ok(verify(join(dir, "pki/etcd/ca.crt"), join(dir, "pki/etcd/server.crt")).ok);
});

test("a leaf not signed by the present CA is an error and nothing is replaced (library and CLI)", async () => {
  const { dir, ctx } = await fresh("foreign");
  const other = await fresh("foreign-other");
  copyFileSync(join(other.dir, "pki/apiserver.crt"), join(dir, "pki/apiserver.crt"));
  copyFileSync(join(other.dir, "pki/apiserver.key"), join(dir, "pki/apiserver.key"));
  const before = fingerprint(dir);
  await assertRefused(ensurePki(store, ctx), dir, before, /apiserver\.crt is not signed by the present ca CA/);
  const f = join(dir, "cluster.yaml");
  writeFileSync(f, CLUSTER_YAML);
  const r = runCli(["certs", "generate", "--cert-dir", join(dir, "pki"), "--kubeconfig-dir", dir, "-f", f]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /apiserver\.crt is not signed by the present ca CA/);
  assert.doesNotMatch(r.stderr, /PRIVATE KEY/);
  assert.deepEqual(fingerprint(dir), { ...before, "cluster.yaml": fingerprint(dir)["cluster.yaml"]! });
});

test("a CA key that does not match its certificate is an error; nothing written", async () => {
  const { dir, ctx } = await fresh("mismatch");
  const other = await fresh("mismatch-other");
  copyFileSync(join(other.dir, "pki/ca.key"), join(dir, "pki/ca.key"));
  rmSync(join(dir, "pki/apiserver.crt"));
  const before = fingerprint(dir);
  await assertRefused(ensurePki(store, ctx), dir, before, /ca\.key does not match .*ca\.crt/);
});

test("an unreadable or garbage CA file is an error naming it; nothing written", async () => {
  const { dir, ctx } = await fresh("garbage");
  writeFileSync(join(dir, "pki/front-proxy-ca.key"), "not a key\n");
  rmSync(join(dir, "admin.conf"));
  let before = fingerprint(dir);
  await assertRefused(ensurePki(store, ctx), dir, before, /front-proxy-ca\.key is not a PEM private key/);
  // A directory where a CA certificate should be.
  rmSync(join(dir, "pki/etcd/ca.crt"));
  mkdirSync(join(dir, "pki/etcd/ca.crt"));
  before = fingerprint(dir);
  await assertRefused(ensurePki(store, ctx), dir, before, /cannot read .*etcd\/ca\.crt: is a directory/);
});

test("a cert dir that is a file is an error; nothing written", async () => {
  const dir = tmp("notdir");
  writeFileSync(join(dir, "pki"), "I am a file\n");
  const before = fingerprint(dir);
  await assertRefused(ensurePki(store, ctxFor(dir)), dir, before, /pki is not a directory/);
  const f = join(dir, "c.yaml");
  writeFileSync(f, CLUSTER_YAML);
  const r = runCli(["certs", "generate", "--cert-dir", join(dir, "pki", "sub"), "--kubeconfig-dir", dir, "-f", f]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /pki is not a directory/);
});

test("an invalid extra SAN is a config error (exit 2, file:line:col); nothing written", async () => {
  const dir = tmp("badsan");
  const f = join(dir, "c.yaml");
  writeFileSync(f, CLUSTER_YAML.replace("[10.0.0.99, lb.example.test]", "[10.0.0.99, \"bad_name!\"]"));
  const r = runCli(["certs", "generate", "--cert-dir", join(dir, "pki"), "--kubeconfig-dir", dir, "-f", f]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /c\.yaml:\d+:\d+ spec\.controlPlane\.certSANs\[1\]: .*bad_name!/);
  assert.deepEqual(Object.keys(fingerprint(dir)), ["c.yaml"]);
  // The PKI layer refuses it on its own too (for callers that build clusters in code).
  assert.throws(() => ctxFor(dir, { controlPlane: { certSANs: ["bad_name!"] } }), (e: unknown) => e instanceof ConfigError && /certSANs\[0\]/.test((e as Error).message));
});

test("bring your own CA: ca.crt + ca.key dropped in are kept and sign the leaves", async () => {
  const dir = tmp("byo");
  mkdirSync(join(dir, "pki"), { recursive: true });
  openssl([
    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "pki/ca.key"), "-out", join(dir, "pki/ca.crt"),
    "-subj", "/O=Example Corp/CN=my-own-ca", "-days", "200",
    "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,digitalSignature",
  ]);
  const caBefore = readFileSync(join(dir, "pki/ca.crt"));
  const keyBefore = readFileSync(join(dir, "pki/ca.key"));
  const r = await ensurePki(store, ctxFor(dir));
  assert.equal(r.plan.decisions.find((d) => d.name === "ca")!.action, "keep");
  assert.deepEqual(readFileSync(join(dir, "pki/ca.crt")), caBefore);
  assert.deepEqual(readFileSync(join(dir, "pki/ca.key")), keyBefore);
  for (const leaf of ["apiserver", "apiserver-kubelet-client"]) assert.ok(verify(join(dir, "pki/ca.crt"), join(dir, `pki/${leaf}.crt`)).ok, leaf);
  assert.match(openssl(["x509", "-in", join(dir, "pki/apiserver.crt"), "-noout", "-issuer", "-nameopt", "RFC2253"]), /CN=my-own-ca,O=Example Corp/);
  // A leaf never outlives its CA.
  const end = (f: string) => new Date(/notAfter=(.+)/.exec(openssl(["x509", "-in", join(dir, f), "-noout", "-enddate"]))![1]!).getTime();
  assert.ok(end("pki/apiserver.crt") <= end("pki/ca.crt"));
  const again = await ensurePki(store, ctxFor(dir));
  assert.ok(again.plan.decisions.every((d) => d.action === "keep"));
});

test("external CA mode: works with the leaves provided, refuses clearly without them", async () => {
  const { dir, ctx } = await fresh("external");
  rmSync(join(dir, "pki/ca.key"));
  const before = fingerprint(dir);
  const r = await ensurePki(store, ctx);
  assert.ok(r.plan.decisions.every((d) => d.action === "keep"));
  assert.match(r.plan.decisions.find((d) => d.name === "ca")!.reason, /external CA/);
  assert.deepEqual(fingerprint(dir), before);
  const exp = JSON.parse(runCli(["certs", "check-expiration", "--cert-dir", join(dir, "pki"), "--kubeconfig-dir", dir, "-o", "json"]).stdout);
  assert.equal(exp.certificates.find((c: { name: string }) => c.name === "apiserver").externallyManaged, true);
  assert.equal(exp.certificates.find((c: { name: string }) => c.name === "etcd-server").externallyManaged, false);
  rmSync(join(dir, "pki/apiserver.crt"));
  rmSync(join(dir, "kubelet.conf"));
  const before2 = fingerprint(dir);
  await assertRefused(ensurePki(store, ctx), dir, before2, /apiserver\.crt: no certificate yet, and the ca CA is external \(no ca\.key\)/);
  // A SAN change cannot be honoured either.
  const { dir: d2 } = await fresh("external-san");
  rmSync(join(d2, "pki/ca.key"));
  const b3 = fingerprint(d2);
  await assertRefused(ensurePki(store, ctxFor(d2, { controlPlane: { certSANs: ["x.example.test"] } })), d2, b3, /cannot re-issue it/);
});

test("an additional control plane copies the first one's CAs and sa key, and gets its own leaves", async () => {
  const { dir: d1 } = await fresh("cp1");
  const shared: SharedCaSet = new Map(sharedRelPaths().map((rel) => [rel, readFileSync(join(d1, "pki", rel))]));
  const d2 = tmp("cp2");
  const ctx2 = ctxFor(d2, {}, "cp2");
  const r = await ensurePki(store, ctx2, { shared });
  assert.deepEqual(r.plan.decisions.filter((d) => d.action === "copy").map((d) => d.name).sort(), ["ca", "etcd-ca", "front-proxy-ca", "sa"]);
  for (const rel of sharedRelPaths()) assert.deepEqual(readFileSync(join(d2, "pki", rel)), readFileSync(join(d1, "pki", rel)), rel);
  assert.equal(subject(join(d2, "pki/etcd/peer.crt")), "CN=cp2");
  assert.ok(verify(join(d1, "pki/etcd/ca.crt"), join(d2, "pki/etcd/peer.crt")).ok);
  assert.match(certText(join(d2, "pki/apiserver.crt")), /IP Address:10\.213\.0\.11/);
  assert.equal(r.plan.decisions.some((d) => d.name === "super-admin.conf"), false, "super-admin.conf only on the first control plane");
  const again = await ensurePki(store, ctx2, { shared });
  assert.ok(again.plan.decisions.every((d) => d.action === "keep"));
  // A control plane whose CA differs from the first one's is refused.
  const { dir: d3 } = await fresh("cp3");
  const before = fingerprint(d3);
  await assertRefused(ensurePki(store, ctxFor(d3, {}, "cp2"), { shared }), d3, before, /differs from the first control plane's ca\.crt/);
});

test("certs renew NAME re-issues from the same CA with a new key, keeping subject and SANs", async () => {
  const { dir } = await fresh("renew");
  const before = fingerprint(dir);
  const sansBefore = /Subject Alternative Name:\s*\n\s*(.+)/.exec(certText(join(dir, "pki/apiserver.crt")))![1];
  const r = runCli(["certs", "renew", "apiserver", "kubelet.conf", "--cert-dir", join(dir, "pki"), "--kubeconfig-dir", dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /renewed apiserver/);
  assert.deepEqual(changedFiles(before, fingerprint(dir)), ["kubelet.conf", "pki/apiserver.crt", "pki/apiserver.key"]);
  assert.equal(/Subject Alternative Name:\s*\n\s*(.+)/.exec(certText(join(dir, "pki/apiserver.crt")))![1], sansBefore);
  assert.ok(verify(join(dir, "pki/ca.crt"), join(dir, "pki/apiserver.crt")).ok);
  // Renewed files are what generate keeps.
  const again = await ensurePki(store, ctxFor(dir));
  assert.ok(again.plan.decisions.every((d) => d.action === "keep"), JSON.stringify(again.plan.decisions.filter((d) => d.action !== "keep")));
  const all = runCli(["certs", "renew", "all", "--cert-dir", join(dir, "pki"), "--kubeconfig-dir", dir]);
  assert.equal(all.code, 0, all.stderr);
  assert.equal((all.stdout.match(/renewed /g) ?? []).length, 12);
});

test("--dry-run writes nothing", async () => {
  const dir = tmp("dry");
  const f = join(dir, "c.yaml");
  writeFileSync(f, CLUSTER_YAML);
  const r = runCli(["certs", "generate", "--dry-run", "--cert-dir", join(dir, "pki"), "--kubeconfig-dir", dir, "-f", f]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /16 created.*dry run: nothing written/);
  assert.deepEqual(Object.keys(fingerprint(dir)), ["c.yaml"]);
  void cpSync;
});

test("spec.pki.keySize 3072 gives 3072-bit keys that openssl checks", async () => {
  const { dir } = await fresh("ks3072", { pki: { keySize: 3072 } });
  for (const f of ["ca", "apiserver", "etcd/peer"]) {
    const text = openssl(["rsa", "-in", join(dir, `pki/${f}.key`), "-check", "-noout", "-text"]);
    assert.match(text, /Private-Key: \(3072 bit/);
    assert.match(text, /RSA key ok/);
  }
  assert.ok(verify(join(dir, "pki/ca.crt"), join(dir, "pki/apiserver.crt")).ok);
});

test("a kept file with a wrong mode is chmod-ed back (content untouched); dry run only reports it", async () => {
  const { dir, ctx } = await fresh("modes");
  const { chmodSync, statSync } = await import("node:fs");
  chmodSync(join(dir, "pki/apiserver.key"), 0o644);
  chmodSync(join(dir, "admin.conf"), 0o640);
  const before = fingerprint(dir);
  const dry = await ensurePki(store, ctx, { dryRun: true });
  assert.deepEqual(dry.plan.modeFixes.map((f) => [f.path.slice(dir.length + 1), f.from.toString(8), f.to.toString(8)]).sort(), [
    ["admin.conf", "640", "600"],
    ["pki/apiserver.key", "644", "600"],
  ]);
  assert.deepEqual(fingerprint(dir), before);
  const r = await ensurePki(store, ctx);
  assert.ok(r.plan.decisions.every((d) => d.action === "keep"));
  assert.equal(statSync(join(dir, "pki/apiserver.key")).mode & 0o777, 0o600);
  assert.equal(statSync(join(dir, "admin.conf")).mode & 0o777, 0o600);
  assert.deepEqual(changedFiles(before, fingerprint(dir)), ["admin.conf", "pki/apiserver.key"]);
  const again = await ensurePki(store, ctx);
  assert.deepEqual(again.plan.modeFixes, []);
});

test("certificates signed by node-forge's own RSA (signer forge) verify the same way", async () => {
  const { setSigner } = await import("../../provisioner/pki/issue.js");
  setSigner("forge");
  try {
    const { dir } = await fresh("forge-signer");
    for (const [ca, leaf] of [["ca", "apiserver"], ["etcd/ca", "etcd/peer"], ["front-proxy-ca", "front-proxy-client"]]) {
      assert.ok(verify(join(dir, `pki/${ca}.crt`), join(dir, `pki/${leaf}.crt`)).ok, leaf);
      assert.ok(verify(join(dir, `pki/${ca}.crt`), join(dir, `pki/${ca}.crt`)).ok, ca);
    }
  } finally {
    setSigner("native");
  }
});

test("check-expiration marks missing files", async () => {
  const { dir } = await fresh("missing");
  rmSync(join(dir, "pki/etcd/peer.crt"));
  const r = runCli(["certs", "check-expiration", "--cert-dir", join(dir, "pki"), "--kubeconfig-dir", dir]);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^etcd-peer\s+!MISSING!/m);
  const j = JSON.parse(runCli(["certs", "check-expiration", "--cert-dir", join(dir, "pki"), "--kubeconfig-dir", dir, "-o", "json"]).stdout);
  assert.equal(j.certificates.find((c: { name: string }) => c.name === "etcd-peer").missing, true);
});

test("the opt-in prime-search key generator makes keys openssl accepts (rsa -check) and certificates that verify", async () => {
  const { setKeyGenerator } = await import("../../provisioner/pki/keys.js");
  setKeyGenerator("primes");
  try {
    const { dir } = await fresh("primes");
    for (const f of ["ca", "apiserver", "etcd/ca", "etcd/server", "front-proxy-client", "sa"]) {
      const text = openssl(["rsa", "-in", join(dir, `pki/${f}.key`), "-check", "-noout", "-text"]);
      assert.match(text, /Private-Key: \(2048 bit, 2 primes\)/, f);
      assert.match(text, /RSA key ok/, f);
    }
    assert.ok(verify(join(dir, "pki/ca.crt"), join(dir, "pki/apiserver.crt")).ok);
  } finally {
    setKeyGenerator("openssl");
  }
});
