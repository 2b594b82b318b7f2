// The table against kubeadm itself (the bundle's kubeadm, when built): kubeadm accepts kubeprov's
// PKI as its own ("Using existing …", nothing rewritten), and kubeprov keeps every file kubeadm
// makes for the same cluster (no create, no re-issue): subjects, SANs, usages and server URLs agree.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { CLUSTER_YAML, fingerprint, runCli, tmp } from "./pki-support.js";

const KUBEADM = join(process.env.KUBEPROV_CACHE ?? join(homedir(), ".cache/kubeprov"), "bundle/v1.37.2/bin/kubeadm");
const skip = !existsSync(KUBEADM) && "kubeadm is not in the bundle (~/.cache/kubeprov/bundle/v1.37.2/bin)";

function kubeadmConfig(certDir: string): string {
  return `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 10.213.0.10
  bindPort: 6443
nodeRegistration:
  name: cp1
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: v1.37.2
clusterName: demo
controlPlaneEndpoint: api.example.test:6443
certificatesDir: ${certDir}
apiServer:
  certSANs: [10.0.0.99, lb.example.test]
`;
}

function kubeadm(args: string[]): string {
  const r = spawnSync(KUBEADM, args, { encoding: "utf8" });
  assert.equal(r.status, 0, `kubeadm ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
}

test("kubeadm uses kubeprov's certificates and kubeconfigs as they are", { skip }, () => {
  const dir = tmp("kubeadm-uses");
  const file = join(dir, "cluster.yaml");
  writeFileSync(file, CLUSTER_YAML);
  const g = runCli(["certs", "generate", "--cert-dir", join(dir, "out/pki"), "--kubeconfig-dir", join(dir, "out"), "-f", file]);
  assert.equal(g.code, 0, g.stderr);
  const cfg = join(dir, "kubeadm.yaml");
  writeFileSync(cfg, kubeadmConfig(join(dir, "out/pki")));
  const before = fingerprint(join(dir, "out"));
  const certs = kubeadm(["init", "phase", "certs", "all", "--config", cfg]);
  const kcs = kubeadm(["init", "phase", "kubeconfig", "all", "--config", cfg, "--kubeconfig-dir", join(dir, "out")]);
  for (const n of ["ca certificate authority", "apiserver certificate", "apiserver-kubelet-client certificate", "front-proxy-ca certificate authority", "front-proxy-client certificate", "etcd/ca certificate authority", "etcd/server certificate", "etcd/peer certificate", "etcd/healthcheck-client certificate", "apiserver-etcd-client certificate"]) {
    assert.match(certs, new RegExp(`Using existing ${n.replace("/", "\\/")}`), n);
  }
  assert.match(certs, /Using the existing "sa" key/);
  for (const k of ["admin", "super-admin", "kubelet", "controller-manager", "scheduler"]) assert.match(kcs, new RegExp(`Using existing kubeconfig file: ".*/${k}\\.conf"`));
  assert.deepEqual(fingerprint(join(dir, "out")), before, "kubeadm rewrote nothing");
});

test("kubeprov keeps every file kubeadm makes for the same cluster", { skip }, () => {
  const dir = tmp("kubeprov-keeps");
  mkdirSync(join(dir, "out"));
  const cfg = join(dir, "kubeadm.yaml");
  writeFileSync(cfg, kubeadmConfig(join(dir, "out/pki")));
  kubeadm(["init", "phase", "certs", "all", "--config", cfg]);
  kubeadm(["init", "phase", "kubeconfig", "all", "--config", cfg, "--kubeconfig-dir", join(dir, "out")]);
  const file = join(dir, "cluster.yaml");
  writeFileSync(file, CLUSTER_YAML);
  const before = fingerprint(join(dir, "out"));
  const g = runCli(["certs", "generate", "--cert-dir", join(dir, "out/pki"), "--kubeconfig-dir", join(dir, "out"), "-f", file]);
  assert.equal(g.code, 0, g.stderr);
  assert.match(g.stdout, /0 created, 0 re-issued, 16 kept/);
  assert.deepEqual(fingerprint(join(dir, "out")), before);
});
