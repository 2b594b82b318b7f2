// Benchmark of the PKI: one node's full PKI (3 CAs, 7 leaves, the service account key, 5 kubeconfigs:
// 16 RSA keys) and a 3-control-plane cluster's (shared CAs, per-node leaves and kubeconfigs), written
// to temporary directories, median of several runs. With kubeadm in the bundle, the same work by
// `kubeadm init phase certs all` + `kubeconfig all` is timed for comparison.
// Default settings: OpenSSL key generation (generateKeyPair, in parallel), native signing of the
// certificates node-forge builds. Variants are timed for comparison.
// Run: npx tsc -p . && node dist/scripts/bench-pki.js [runs]
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { DEFAULT_KUBERNETES_VERSION } from "../provisioner/constants.js";
import { bundleDir } from "../provisioner/paths.js";
import { pkiContext } from "../provisioner/pki/certlist.js";
import { ensurePki } from "../provisioner/pki/ensure.js";
import { setSigner, type Signer } from "../provisioner/pki/issue.js";
import { setKeyGenerator } from "../provisioner/pki/keys.js";
import { sharedRelPaths } from "../provisioner/pki/plan.js";
import { FsStore } from "../provisioner/pki/store.js";
import { clusterSchema, type Cluster } from "../provisioner/spec/schema.js";

export interface PkiBenchResult {
  runs: number;
  /** Median milliseconds: one node, certificates + kubeconfigs. */
  nodeMs: number;
  /** Median milliseconds: three control planes (first one creates the CAs; the other two in parallel). */
  cluster3Ms: number;
  /** Same node figure with node-forge's JavaScript RSA signing instead of native signing. */
  nodeForgeSignMs?: number;
  /** Same node figure with the opt-in prime-search key generator (KUBEPROV_PKI_KEYGEN=primes). */
  nodePrimesKeygenMs?: number;
  /** kubeadm init phase certs all + kubeconfig all, when kubeadm is in the bundle. */
  kubeadmNodeMs?: number;
  loadAverage: number;
}

function benchCluster(): Cluster {
  return clusterSchema.parse({
    apiVersion: "kubeprov/v1alpha1",
    kind: "Cluster",
    metadata: { name: "bench" },
    spec: {
      controlPlaneEndpoint: "10.213.0.100:6443",
      hosts: [1, 2, 3].map((i) => ({ name: `cp${i}`, address: `10.213.0.${10 + i}`, roles: ["control-plane"] })),
    },
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

async function oneNode(cluster: Cluster, root: string): Promise<number> {
  const t = performance.now();
  await ensurePki(new FsStore(), pkiContext(cluster, "cp1", { certDir: join(root, "pki"), kubeconfigDir: root }));
  return performance.now() - t;
}

async function threeNodes(cluster: Cluster, root: string): Promise<number> {
  const store = new FsStore();
  const t = performance.now();
  const d1 = join(root, "cp1");
  await ensurePki(store, pkiContext(cluster, "cp1", { certDir: join(d1, "pki"), kubeconfigDir: d1 }));
  const shared = new Map(sharedRelPaths().map((rel) => [rel, readFileSync(join(d1, "pki", rel))]));
  await Promise.all(
    ["cp2", "cp3"].map((n) => ensurePki(store, pkiContext(cluster, n, { certDir: join(root, n, "pki"), kubeconfigDir: join(root, n) }), { shared })),
  );
  return performance.now() - t;
}

function kubeadmNode(root: string): number | undefined {
  const kubeadm = join(bundleDir(DEFAULT_KUBERNETES_VERSION), "bin", "kubeadm");
  if (!existsSync(kubeadm)) return undefined;
  mkdirSync(root, { recursive: true });
  const cfg = join(root, "kubeadm.yaml");
  writeFileSync(
    cfg,
    [
      "apiVersion: kubeadm.k8s.io/v1beta4",
      "kind: InitConfiguration",
      "localAPIEndpoint: {advertiseAddress: 10.213.0.11, bindPort: 6443}",
      "nodeRegistration: {name: cp1}",
      "---",
      "apiVersion: kubeadm.k8s.io/v1beta4",
      "kind: ClusterConfiguration",
      `kubernetesVersion: ${DEFAULT_KUBERNETES_VERSION}`,
      "controlPlaneEndpoint: 10.213.0.100:6443",
      `certificatesDir: ${join(root, "pki")}`,
      "",
    ].join("\n"),
  );
  const t = performance.now();
  for (const args of [["init", "phase", "certs", "all", "--config", cfg], ["init", "phase", "kubeconfig", "all", "--config", cfg, "--kubeconfig-dir", root]]) {
    const r = spawnSync(kubeadm, args, { encoding: "utf8" });
    if (r.status !== 0) return undefined;
  }
  return performance.now() - t;
}

export async function benchPki(runs = 5, opts: { compareForge?: boolean; compareKubeadm?: boolean } = {}): Promise<PkiBenchResult> {
  const cluster = benchCluster();
  const root = mkdtempSync(join(tmpdir(), "kubeprov-bench-pki-"));
  const node: number[] = [];
  const three: number[] = [];
  const forgeSign: number[] = [];
  const primesKeygen: number[] = [];
  const kubeadm: number[] = [];
  try {
    await oneNode(cluster, join(root, "warmup"));
    for (let i = 0; i < runs; i++) {
      node.push(await oneNode(cluster, join(root, `node-${i}`)));
      three.push(await threeNodes(cluster, join(root, `three-${i}`)));
      if (opts.compareForge !== false) {
        setSigner("forge" as Signer);
        try {
          forgeSign.push(await oneNode(cluster, join(root, `forge-${i}`)));
        } finally {
          setSigner("native");
        }
      }
      if (opts.compareForge !== false) {
        setKeyGenerator("primes");
        try {
          primesKeygen.push(await oneNode(cluster, join(root, `primes-${i}`)));
        } finally {
          setKeyGenerator("openssl");
        }
      }
      if (opts.compareKubeadm !== false) {
        const k = kubeadmNode(join(root, `kubeadm-${i}`));
        if (k !== undefined) kubeadm.push(k);
      }
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return {
    runs,
    nodeMs: Math.round(median(node)),
    cluster3Ms: Math.round(median(three)),
    nodeForgeSignMs: forgeSign.length ? Math.round(median(forgeSign)) : undefined,
    nodePrimesKeygenMs: primesKeygen.length ? Math.round(median(primesKeygen)) : undefined,
    kubeadmNodeMs: kubeadm.length ? Math.round(median(kubeadm)) : undefined,
    loadAverage: Math.round(loadavg()[0]! * 100) / 100,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  const runs = Number(process.argv[2] ?? 5);
  const r = await benchPki(runs);
  console.log(`PKI, one node (16 RSA-2048 keys, 11 certificates + 5 kubeconfigs, written): ${r.nodeMs} ms (median of ${r.runs})`);
  console.log(`PKI, 3 control planes (shared CAs, per-node leaves and kubeconfigs):         ${r.cluster3Ms} ms`);
  if (r.nodeForgeSignMs !== undefined) console.log(`  one node with node-forge's JavaScript RSA signing instead of native:      ${r.nodeForgeSignMs} ms`);
  if (r.nodePrimesKeygenMs !== undefined) console.log(`  one node with the opt-in prime-search key generator (KEYGEN=primes):      ${r.nodePrimesKeygenMs} ms`);
  if (r.kubeadmNodeMs !== undefined) console.log(`  kubeadm init phase certs all + kubeconfig all (same machine, same runs):   ${r.kubeadmNodeMs} ms`);
  console.log(`  (1-minute load average ${r.loadAverage} on ${(await import("node:os")).cpus().length} CPUs)`);
}
