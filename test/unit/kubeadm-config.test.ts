// What kubeprov keeps in the cluster for kubeadm: the ClusterConfiguration in kube-system/kubeadm-config,
// the shared KubeletConfiguration in kube-system/kubelet-config, and kubeadm's Roles for both. The
// rendered documents are parsed and checked field by field, and the real kubeadm of the bundle (when
// built) validates them strictly (`kubeadm config validate` refuses unknown fields).
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { parse as parseYaml } from "yaml";
import { parseClusterText } from "../../provisioner/spec/load.js";
import { kubeadmConfigObjects, kubeletConfigObjects, clusterConfiguration } from "../../provisioner/bootstrap/kubeadm-config.js";
import { renderKubeletConfig } from "../../provisioner/tasks/kubelet.js";
import { bundleDir } from "../../provisioner/paths.js";
import { DEFAULT_KUBERNETES_VERSION } from "../../provisioner/constants.js";
import type { Host, HostFacts } from "../../provisioner/engine/task.js";

const stacked = parseClusterText(
  `apiVersion: kubeprov/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  networking: {podSubnet: 10.244.0.0/16, serviceSubnet: 10.96.0.0/12, dnsDomain: example.internal, nodeCidrMaskSize: 25}
  controlPlane:
    certSANs: [api.example.internal]
    extraArgs:
      apiserver: {audit-log-maxage: "7"}
      etcd: {snapshot-count: "5000"}
  containerRuntime: {cgroupDriver: cgroupfs}
  pki: {keySize: 3072, certificateValidityDays: 90}
  hosts:
    - {name: cp1, address: 10.213.5.2, roles: [control-plane]}
    - {name: cp2, address: 10.213.5.3, roles: [control-plane]}
`,
  "stacked.yaml",
);

const externalEtcd = parseClusterText(
  `apiVersion: kubeprov/v1alpha1
kind: Cluster
metadata: {name: ext}
spec:
  controlPlaneEndpoint: 10.213.6.100:8443
  hosts:
    - {name: cp1, address: 10.213.6.2, roles: [control-plane]}
    - {name: e1, address: 10.213.6.11, roles: [etcd]}
    - {name: e2, address: 10.213.6.12, roles: [etcd]}
`,
  "external.yaml",
);

const ETCD_IMAGE = "registry.k8s.io/etcd:3.7.0-0";

function clusterConfigOf(cluster: typeof stacked, ip: string): Record<string, any> {
  const [cm] = kubeadmConfigObjects(cluster, { firstControlPlaneIP: ip, etcdImage: ETCD_IMAGE }) as any[];
  return parseYaml(cm.data.ClusterConfiguration);
}

function nodeContainer(name: string): Host {
  const facts = { container: true, cgroupVersion: 1 } as Partial<HostFacts> as HostFacts;
  return { name, nodeIP: "10.213.5.2", roles: ["control-plane"], spec: { name, address: "10.213.5.2", roles: ["control-plane"], connection: "ssh" }, facts } as unknown as Host;
}

test("kubeadm-config: a v1beta4 ClusterConfiguration with the cluster file's version, endpoint, networking, PKI and stacked etcd", () => {
  const [cm] = kubeadmConfigObjects(stacked, { firstControlPlaneIP: "10.213.5.2", etcdImage: ETCD_IMAGE }) as any[];
  assert.deepEqual([cm.kind, cm.metadata.namespace, cm.metadata.name, Object.keys(cm.data)], ["ConfigMap", "kube-system", "kubeadm-config", ["ClusterConfiguration"]]);
  const cc = clusterConfigOf(stacked, "10.213.5.2");
  assert.equal(cc.apiVersion, "kubeadm.k8s.io/v1beta4");
  assert.equal(cc.kind, "ClusterConfiguration");
  assert.equal(cc.clusterName, "demo");
  assert.equal(cc.kubernetesVersion, DEFAULT_KUBERNETES_VERSION);
  // No endpoint in the file: the first control plane's, as in cluster-info (kubeadm needs one to join control planes).
  assert.equal(cc.controlPlaneEndpoint, "10.213.5.2:6443");
  assert.equal(cc.certificatesDir, "/etc/kubernetes/pki");
  assert.equal(cc.imageRepository, "registry.k8s.io");
  assert.equal(cc.encryptionAlgorithm, "RSA-3072");
  assert.equal(cc.certificateValidityPeriod, "2160h0m0s");
  assert.equal(cc.caCertificateValidityPeriod, "87600h0m0s");
  assert.deepEqual(cc.networking, { podSubnet: "10.244.0.0/16", serviceSubnet: "10.96.0.0/12", dnsDomain: "example.internal" });
  assert.deepEqual(cc.etcd, { local: { dataDir: "/var/lib/etcd", imageRepository: "registry.k8s.io", imageTag: "3.7.0-0", extraArgs: [{ name: "snapshot-count", value: "5000" }] } });
  // Only flags a kubeadm-made control plane would otherwise get differently: the file's extraArgs
  // and a node CIDR size that is not kubeadm's 24.
  assert.deepEqual(cc.apiServer, { certSANs: ["api.example.internal"], extraArgs: [{ name: "audit-log-maxage", value: "7" }] });
  assert.deepEqual(cc.controllerManager, {
    extraArgs: [
      { name: "kube-api-burst", value: "200" },
      { name: "kube-api-qps", value: "100" },
      { name: "node-cidr-mask-size", value: "25" },
    ],
  });
  assert.deepEqual(cc.scheduler, {});
});

test("kubeadm-config: external etcd names every etcd host and the API server's etcd client certificate; the file's endpoint wins", () => {
  const cc = clusterConfigOf(externalEtcd, "10.213.6.2");
  assert.equal(cc.controlPlaneEndpoint, "10.213.6.100:8443");
  assert.deepEqual(cc.etcd, {
    external: {
      endpoints: ["https://10.213.6.11:2379", "https://10.213.6.12:2379"],
      caFile: "/etc/kubernetes/pki/etcd/ca.crt",
      certFile: "/etc/kubernetes/pki/apiserver-etcd-client.crt",
      keyFile: "/etc/kubernetes/pki/apiserver-etcd-client.key",
    },
  });
  // The controller manager's client rate limit (kubeprov's, not kubeadm's default) only.
  assert.deepEqual(cc.controllerManager, { extraArgs: [{ name: "kube-api-burst", value: "200" }, { name: "kube-api-qps", value: "100" }] });
});

test("kubeadm-config renders the same text every time (a converged cluster is not rewritten)", () => {
  const a = kubeadmConfigObjects(stacked, { firstControlPlaneIP: "10.213.5.2", etcdImage: ETCD_IMAGE });
  const b = kubeadmConfigObjects(stacked, { firstControlPlaneIP: "10.213.5.2", etcdImage: ETCD_IMAGE });
  assert.deepEqual(a, b);
  // Without a bundle manifest (a downloaded release) the etcd image is kubeadm's choice.
  assert.deepEqual(clusterConfiguration(stacked, { firstControlPlaneIP: "10.213.5.2" }).etcd, { local: { dataDir: "/var/lib/etcd", extraArgs: [{ name: "snapshot-count", value: "5000" }] } });
});

test("kubelet-config: the node's KubeletConfiguration without per-node fields (cgroupRoot, containerRuntimeEndpoint)", () => {
  const node = renderKubeletConfig(stacked, nodeContainer("cp1"));
  assert.match(node, /cgroupRoot: \/kubeprov\/demo\/cp1/);
  const [cm] = kubeletConfigObjects(node) as any[];
  assert.deepEqual([cm.metadata.namespace, cm.metadata.name, Object.keys(cm.data)], ["kube-system", "kubelet-config", ["kubelet"]]);
  const shared = parseYaml(cm.data.kubelet);
  assert.equal(shared.kind, "KubeletConfiguration");
  assert.equal(shared.apiVersion, "kubelet.config.k8s.io/v1beta1");
  assert.equal(shared.cgroupRoot, undefined);
  assert.equal(shared.containerRuntimeEndpoint, undefined);
  assert.equal(shared.cgroupDriver, "cgroupfs");
  assert.deepEqual(shared.clusterDNS, ["10.96.0.10"]);
  assert.equal(shared.clusterDomain, "example.internal");
  assert.equal(shared.failSwapOn, false);
  assert.equal(shared.failCgroupV1, false);
  // Every node's own config gives the same shared one.
  assert.deepEqual(kubeletConfigObjects(renderKubeletConfig(stacked, nodeContainer("cp2"))), kubeletConfigObjects(node));
});

test("kubeadm's Roles and RoleBindings: nodes and the bootstrap token group may get each ConfigMap, and only it", () => {
  const objs = [...kubeadmConfigObjects(stacked, { firstControlPlaneIP: "10.213.5.2" }), ...kubeletConfigObjects(renderKubeletConfig(stacked, nodeContainer("cp1")))] as any[];
  const byName = Object.fromEntries(objs.map((o) => [`${o.kind}/${o.metadata.name}`, o]));
  const subjects = [
    { apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "system:bootstrappers:kubeadm:default-node-token" },
    { apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "system:nodes" },
  ];
  for (const [role, cm] of [["kubeadm:nodes-kubeadm-config", "kubeadm-config"], ["kubeadm:kubelet-config", "kubelet-config"]]) {
    assert.deepEqual(byName[`Role/${role}`].rules, [{ apiGroups: [""], resources: ["configmaps"], resourceNames: [cm], verbs: ["get"] }]);
    assert.equal(byName[`Role/${role}`].metadata.namespace, "kube-system");
    assert.deepEqual(byName[`RoleBinding/${role}`].roleRef, { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: role });
    assert.deepEqual(byName[`RoleBinding/${role}`].subjects, subjects);
  }
});

const kubeadm = join(bundleDir(DEFAULT_KUBERNETES_VERSION), "bin", "kubeadm");
test("the real kubeadm accepts both documents (strict: an unknown field would be refused)", { skip: existsSync(kubeadm) ? false : `no kubeadm in the bundle (${kubeadm})` }, () => {
  const dir = mkdtempSync(join(tmpdir(), "kubeprov-kubeadm-config-"));
  try {
    for (const cluster of [stacked, externalEtcd]) {
      const [cm] = kubeadmConfigObjects(cluster, { firstControlPlaneIP: "10.213.5.2", etcdImage: ETCD_IMAGE }) as any[];
      const [kubelet] = kubeletConfigObjects(renderKubeletConfig(cluster, nodeContainer("cp1"))) as any[];
      const file = join(dir, `${cluster.metadata.name}.yaml`);
      writeFileSync(file, `${cm.data.ClusterConfiguration}---\n${kubelet.data.kubelet}`);
      const out = execFileSync(kubeadm, ["config", "validate", "--config", file], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
      assert.match(out, /ok/);
    }
    // The check is strict: the same document with one unknown field is refused.
    const bad = join(dir, "bad.yaml");
    writeFileSync(bad, `${(kubeadmConfigObjects(stacked, { firstControlPlaneIP: "10.213.5.2" })[0] as any).data.ClusterConfiguration}notAField: 1\n`);
    assert.throws(() => execFileSync(kubeadm, ["config", "validate", "--config", bad], { stdio: "pipe" }), /notAField/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
