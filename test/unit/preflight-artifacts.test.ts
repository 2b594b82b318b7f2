// resolveArtifacts: the bundle directory (manifest.json sha256) and verified downloads from a real
// HTTP server on 127.0.0.1 (files + .sha256), cached under cacheDir()/downloads.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { parseClusterText } from "../../provisioner/spec/load.js";
import { resolveArtifacts, parseSha256File, releaseUrl } from "../../provisioner/artifacts.js";
import { RuntimeFailure } from "../../provisioner/errors.js";

const sha = (b: Buffer | string) => createHash("sha256").update(b).digest("hex");
let root: string;
let server: Server;
let mirror: string;
const hits: string[] = [];
const files: Record<string, Buffer> = {
  kubelet: Buffer.from("#!/bin/sh\necho kubelet v1.37.2\n"),
  kubectl: Buffer.from("#!/bin/sh\necho kubectl v1.37.2\n" + "x".repeat(200_000)),
  "kube-proxy": Buffer.from("corrupted on the wire"),
};
const digests: Record<string, string> = {
  kubelet: sha(files.kubelet!),
  kubectl: `${sha(files.kubectl!)}  kubectl`,
  "kube-proxy": sha("what the release really holds"),
};

function cluster(artifacts: string) {
  return parseClusterText(
    `apiVersion: kubeprov/v1alpha1\nkind: Cluster\nmetadata: {name: kpt-art}\nspec:\n  kubernetesVersion: v1.37.2\n  artifacts: ${artifacts}\n  hosts: [{name: cp1, address: 10.213.0.2, roles: [control-plane]}]\n`,
    "art.yaml",
  );
}

before(async () => {
  root = mkdtempSync(join(tmpdir(), "kpt-artifacts-"));
  process.env.KUBEPROV_CACHE = join(root, "cache");
  server = createServer((req, res) => {
    hits.push(req.url!);
    const m = /^\/release\/v1\.37\.2\/bin\/linux\/amd64\/([a-z-]+)(\.sha256)?$/.exec(req.url!);
    const name = m?.[1];
    if (!m || !name || !(name in files)) {
      res.writeHead(404).end("not found");
      return;
    }
    if (m[2]) res.writeHead(200, { "content-type": "text/plain" }).end(digests[name]! + "\n");
    else res.writeHead(200, { "content-type": "application/octet-stream" }).end(files[name]);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  mirror = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(root, { recursive: true, force: true });
  delete process.env.KUBEPROV_CACHE;
});

test("download: fetched, checked against .sha256 (bare or with a name), cached; a second resolve downloads nothing", async () => {
  const c = cluster(`{source: download, mirror: "${mirror}/"}`);
  const r = await resolveArtifacts(c, { names: ["kubelet", "kubectl"] });
  assert.equal(r.source, "download");
  assert.equal(r.binaries.kubelet!.sha256, sha(files.kubelet!));
  assert.equal(r.binaries.kubectl!.path, join(root, "cache", "downloads", "v1.37.2", "linux", "amd64", "kubectl"));
  const before = hits.filter((h) => !h.endsWith(".sha256")).length;
  assert.equal(before, 2);
  const again = await resolveArtifacts(c, { names: ["kubelet", "kubectl"] });
  assert.equal(again.binaries.kubectl!.sha256, r.binaries.kubectl!.sha256);
  assert.equal(hits.filter((h) => !h.endsWith(".sha256")).length, before, "cached files were downloaded again");
});

test("download: a corrupted file is refused and nothing is kept in the cache", async () => {
  const c = cluster(`{source: download, mirror: "${mirror}"}`);
  await assert.rejects(resolveArtifacts(c, { names: ["kube-proxy"] }), (e: unknown) => {
    assert.ok(e instanceof RuntimeFailure);
    assert.match((e as Error).message, /refused .*kube-proxy: its sha256 is [0-9a-f]{64}, but .*kube-proxy\.sha256 says/);
    return true;
  });
  const dir = join(root, "cache", "downloads", "v1.37.2", "linux", "amd64");
  assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith("kube-proxy")), []);
});

test("download: missing file, and a binary the release does not publish, are clear errors", async () => {
  await assert.rejects(resolveArtifacts(cluster(`{source: download, mirror: "${mirror}"}`), { names: ["kubeadm"] }), /HTTP 404/);
  await assert.rejects(resolveArtifacts(cluster(`{source: download, mirror: "${mirror}"}`), { names: ["etcd"] }), /not published with the Kubernetes release.*source: dir/);
  assert.equal(releaseUrl("https://dl.k8s.io/", "v1.37.2", "arm64", "kubelet"), "https://dl.k8s.io/release/v1.37.2/bin/linux/arm64/kubelet");
  assert.equal(parseSha256File("ABCDEF".repeat(10) + "abcd  x\n"), ("abcdef".repeat(10) + "abcd"));
  assert.equal(parseSha256File("<html>"), undefined);
});

test("dir: binaries checked against manifest.json; a damaged one, a missing bundle and a wrong version are clear errors", async () => {
  const b = join(root, "bundle");
  mkdirSync(join(b, "bin"), { recursive: true });
  writeFileSync(join(b, "bin", "kubelet"), files.kubelet!);
  writeFileSync(join(b, "bin", "kubectl"), "tampered");
  const manifest = { kubernetesVersion: "v1.37.2", sha256: { kubelet: sha(files.kubelet!), kubectl: sha(files.kubectl!) } };
  writeFileSync(join(b, "manifest.json"), JSON.stringify(manifest));
  const c = cluster(`{source: dir, path: "${b}"}`);
  const r = await resolveArtifacts(c, { names: ["kubelet"] });
  assert.equal(r.source, "dir");
  assert.equal(r.binaries.kubelet!.path, join(b, "bin", "kubelet"));
  await assert.rejects(resolveArtifacts(c), /kubectl does not match manifest.json.*npm run artifacts/);
  // Without verify the manifest's digest is taken as it is (only its existence is checked).
  assert.equal((await resolveArtifacts(c, { names: ["kubectl"], verify: false })).binaries.kubectl!.sha256, sha(files.kubectl!));
  await assert.rejects(resolveArtifacts(c, { names: ["etcd"] }), /has no etcd/);
  writeFileSync(join(b, "manifest.json"), JSON.stringify({ ...manifest, kubernetesVersion: "v1.36.3" }));
  await assert.rejects(resolveArtifacts(c, { names: ["kubelet"] }), /for Kubernetes v1\.36\.3, the cluster wants v1\.37\.2/);
  // the default bundle location under an empty cache
  await assert.rejects(resolveArtifacts(cluster("{source: dir}")), (e: unknown) => {
    assert.match((e as Error).message, /no artifact bundle for Kubernetes v1\.37\.2: .*bundle\/v1\.37\.2\/manifest\.json is missing; build it with `npm run artifacts`/);
    return true;
  });
  assert.ok(!existsSync(join(root, "cache", "bundle")));
});
