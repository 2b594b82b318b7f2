// The objects bootstrap and addons keep in the cluster: rendered from templates/addons/, valid
// YAML/JSON, with the values of the cluster file.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parse as parseYaml } from "yaml";
import { parseClusterText } from "../../provisioner/spec/load.js";
import {
  apiServerURL,
  bootstrapRbacObjects,
  clusterAdminsObjects,
  clusterInfoConfigMap,
  clusterInfoKubeconfig,
  clusterInfoRbacObjects,
  cniConfig,
  corednsObjects,
  isUpstreamNameserver,
  kubeProxyObjects,
  nameservers,
  uploadConfigObjects,
  storedClusterFile,
} from "../../provisioner/bootstrap/manifests.js";
import { verifyDetachedJws } from "../../provisioner/bootstrap/jws.js";
import { isSubset } from "../../provisioner/bootstrap/api.js";
import { controlPlaneMarks, pickJoinToken, clusterInfoDifferences } from "../../provisioner/tasks/bootstrap.js";
import { joinEndpoint, joinLines, kubeadmCanJoinControlPlane } from "../../provisioner/bootstrap/joincmd.js";
import type { Host } from "../../provisioner/engine/task.js";
import type { Cluster } from "../../provisioner/spec/schema.js";

const cluster = parseClusterText(
  `apiVersion: kubeprov/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  networking: {podSubnet: 10.244.0.0/16, serviceSubnet: 10.96.0.0/12, dnsDomain: cluster.local}
  hosts:
    - {name: cp1, address: 10.213.5.2, roles: [control-plane, worker]}
`,
  "test.yaml",
);

const CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";

test("cluster-admins and node bootstrap RBAC use kubeadm's names", () => {
  const [admins] = clusterAdminsObjects();
  assert.equal(admins.metadata.name, "kubeadm:cluster-admins");
  assert.deepEqual((admins as any).subjects, [{ apiGroup: "rbac.authorization.k8s.io", kind: "Group", name: "kubeadm:cluster-admins" }]);
  const rbac = bootstrapRbacObjects();
  const byName = Object.fromEntries(rbac.map((o) => [`${o.kind}/${o.metadata.name}`, o as any]));
  assert.equal(byName["ClusterRoleBinding/kubeadm:kubelet-bootstrap"].roleRef.name, "system:node-bootstrapper");
  assert.equal(byName["ClusterRoleBinding/kubeadm:kubelet-bootstrap"].subjects[0].name, "system:bootstrappers:kubeadm:default-node-token");
  assert.equal(byName["ClusterRoleBinding/kubeadm:node-autoapprove-bootstrap"].roleRef.name, "system:certificates.k8s.io:certificatesigningrequests:nodeclient");
  assert.equal(byName["ClusterRoleBinding/kubeadm:node-autoapprove-certificate-rotation"].roleRef.name, "system:certificates.k8s.io:certificatesigningrequests:selfnodeclient");
  assert.equal(byName["ClusterRoleBinding/kubeadm:node-autoapprove-certificate-rotation"].subjects[0].name, "system:nodes");
  assert.equal(byName["ClusterRoleBinding/kubeadm:kubelet-api-admin"].subjects[0].name, "kube-apiserver-kubelet-client");
  assert.deepEqual(byName["ClusterRole/kubeadm:get-nodes"].rules, [{ apiGroups: [""], resources: ["nodes"], verbs: ["get"] }]);
  const [role, binding] = clusterInfoRbacObjects() as any[];
  assert.deepEqual(role.rules[0].resourceNames, ["cluster-info"]);
  assert.deepEqual(binding.subjects, [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: "system:anonymous" }]);
});

test("upload-config holds the effective cluster file as YAML", () => {
  const [cm] = uploadConfigObjects(cluster) as any[];
  assert.equal(cm.metadata.namespace, "kube-system");
  assert.equal(cm.metadata.name, "kubeprov-config");
  assert.deepEqual(parseYaml(cm.data["cluster.yaml"]), JSON.parse(JSON.stringify(storedClusterFile(cluster))));
});

test("upload-config leaves out what belongs to the operator's machine: SSH key and known_hosts files, the local artifact directory", () => {
  const on = (home: string): Cluster => ({
    ...cluster,
    spec: {
      ...cluster.spec,
      ssh: { ...cluster.spec.ssh, identityFile: `${home}/.ssh/id_ed25519`, knownHostsFile: `${home}/.ssh/known_hosts`, passphraseEnv: "KEY_PASS" },
      artifacts: { ...cluster.spec.artifacts, path: `${home}/bundle` },
      hosts: cluster.spec.hosts.map((h) => ({ ...h, ssh: { user: "admin", identityFile: `${home}/.ssh/other` } })),
    },
  });
  const stored = parseYaml((uploadConfigObjects(on("/home/alice")) as any[])[0].data["cluster.yaml"]);
  const text = JSON.stringify(stored);
  assert.ok(!text.includes("/home/alice"), text);
  assert.ok(!text.includes("KEY_PASS"), text);
  assert.deepEqual(stored.spec.ssh, { user: cluster.spec.ssh.user, port: cluster.spec.ssh.port });
  assert.deepEqual(stored.spec.hosts.map((h: any) => h.ssh), cluster.spec.hosts.map(() => ({ user: "admin" })));
  // The same cluster applied from another machine (other paths) is stored the same.
  assert.deepEqual(uploadConfigObjects(on("/home/alice")), uploadConfigObjects(on("/Users/bob")));
});

test("cluster-info: kubeconfig with CA and server, one verifiable JWS per token", () => {
  const server = apiServerURL(cluster, "10.213.5.2");
  assert.equal(server, "https://10.213.5.2:6443");
  const kc = clusterInfoKubeconfig(CA, server);
  const parsed = parseYaml(kc);
  assert.equal(parsed.clusters[0].cluster.server, server);
  assert.equal(Buffer.from(parsed.clusters[0].cluster["certificate-authority-data"], "base64").toString(), CA);
  const cm = clusterInfoConfigMap(kc, ["abcdef.0123456789abcdef", "zyxwvu.0123456789abcdef"]) as any;
  assert.equal(cm.metadata.namespace, "kube-public");
  assert.equal(verifyDetachedJws(cm.data["jws-kubeconfig-abcdef"], cm.data.kubeconfig, "abcdef.0123456789abcdef"), true);
  assert.equal(verifyDetachedJws(cm.data["jws-kubeconfig-zyxwvu"], cm.data.kubeconfig, "zyxwvu.0123456789abcdef"), true);
  // A stale signature (token deleted) is a difference; extra keys of other kinds are not.
  const have = { ...cm, data: { ...cm.data, "jws-kubeconfig-gone00": "x..y" } };
  assert.deepEqual(clusterInfoDifferences(cm, have), ["drop the signature of token gone00"]);
  assert.deepEqual(clusterInfoDifferences(cm, cm), []);
});

test("controlPlaneEndpoint wins for cluster-info and join lines", () => {
  const ha = { ...cluster, spec: { ...cluster.spec, controlPlaneEndpoint: "10.213.5.100:8443" } };
  assert.equal(apiServerURL(ha, "10.213.5.2"), "https://10.213.5.100:8443");
  assert.equal(joinEndpoint(ha, "10.213.5.2"), "10.213.5.100:8443");
  const lines = joinLines({ endpoint: "10.213.5.2:6443", token: "abcdef.0123456789abcdef", caHash: "sha256:" + "a".repeat(64), target: "--name demo" }).join("\n");
  assert.match(lines, /kubeprov join --name demo/);
  assert.match(lines, /kubeadm join 10\.213\.5\.2:6443 --token abcdef\.0123456789abcdef --discovery-token-ca-cert-hash sha256:a{64}\n/);
  assert.match(lines, /--control-plane/);
  assert.doesNotMatch(lines, /certificate-key|KUBEPROV_CERTIFICATE_KEY/);
  // With --upload-certs: the kubeadm control-plane line carries the key; kubeprov's line passes it in the environment.
  const key = "0f".repeat(32);
  const withKey = joinLines({ endpoint: "10.213.5.2:6443", token: "abcdef.0123456789abcdef", caHash: "sha256:" + "a".repeat(64), target: "--name demo", certificateKey: key }).join("\n");
  assert.match(withKey, new RegExp(`kubeadm join 10\\.213\\.5\\.2:6443 --token abcdef\\.0123456789abcdef --discovery-token-ca-cert-hash sha256:a{64} --control-plane --certificate-key ${key}\n`));
  assert.match(withKey, new RegExp(`KUBEPROV_CERTIFICATE_KEY=${key} kubeprov join --name demo --token abcdef\\.0123456789abcdef`));
  // Stacked etcd as systemd units: kubeadm cannot add its etcd member (no etcd pods), so no kubeadm control-plane line.
  const systemd = { ...cluster, spec: { ...cluster.spec, controlPlane: { ...cluster.spec.controlPlane, mode: "systemd" as const } } };
  assert.equal(kubeadmCanJoinControlPlane(cluster), true);
  assert.equal(kubeadmCanJoinControlPlane(systemd), false);
  const noCp = joinLines({ endpoint: "10.213.5.2:6443", token: "abcdef.0123456789abcdef", caHash: "sha256:" + "a".repeat(64), target: "--name demo", certificateKey: key, kubeadmControlPlane: false }).join("\n");
  assert.doesNotMatch(noCp, /kubeadm join .*--control-plane/);
  assert.match(noCp, /kubeadm join 10\.213\.5\.2:6443 --token abcdef\.0123456789abcdef --discovery-token-ca-cert-hash sha256:a{64}\n/);
  assert.match(noCp, /kubeadm cannot join a control plane here/);
});

test("bridge CNI config: valid JSON, host-local IPAM on the node's pod CIDR, portmap", () => {
  const c = JSON.parse(cniConfig("10.244.3.0/24"));
  assert.equal(c.plugins[0].type, "bridge");
  assert.equal(c.plugins[0].ipam.type, "host-local");
  assert.deepEqual(c.plugins[0].ipam.ranges, [[{ subnet: "10.244.3.0/24" }]]);
  assert.equal(c.plugins[1].type, "portmap");
});

test("kube-proxy: iptables, clusterCIDR, conntrack left alone in containers, image and mounts", () => {
  const objs = kubeProxyObjects(cluster, { server: "https://10.213.5.2:6443", inContainer: true }) as any[];
  assert.deepEqual(objs.map((o) => o.kind), ["ServiceAccount", "ClusterRoleBinding", "ConfigMap", "DaemonSet"]);
  const cfg = parseYaml(objs[2].data["config.conf"]);
  assert.equal(cfg.kind, "KubeProxyConfiguration");
  assert.equal(cfg.mode, "iptables");
  assert.equal(cfg.clusterCIDR, "10.244.0.0/16");
  assert.equal(cfg.conntrack.maxPerCore, 0);
  assert.equal(cfg.conntrack.tcpEstablishedTimeout, "0s");
  assert.equal(parseYaml(objs[2].data["kubeconfig.conf"]).clusters[0].cluster.server, "https://10.213.5.2:6443");
  const hostCfg = parseYaml(kubeProxyObjects(cluster, { server: "https://x:6443", inContainer: false })[2].data!["config.conf" as never] as string);
  assert.equal(hostCfg.conntrack.maxPerCore, 32768);
  const ds = objs[3];
  const c = ds.spec.template.spec.containers[0];
  assert.equal(c.image, "registry.k8s.io/kube-proxy:v1.37.2");
  assert.equal(c.imagePullPolicy, "IfNotPresent");
  assert.equal(ds.spec.template.spec.hostNetwork, true);
  assert.equal(c.securityContext.privileged, true);
  assert.deepEqual(c.volumeMounts.map((m: any) => m.mountPath).sort(), ["/lib/modules", "/run/xtables.lock", "/var/lib/kube-proxy"]);
  assert.equal(objs[1].roleRef.name, "system:node-proxier");
});

test("CoreDNS: Service at the 10th address, Corefile forwards only with an upstream", () => {
  const objs = corednsObjects(cluster, { upstream: false }) as any[];
  const svc = objs.find((o) => o.kind === "Service");
  assert.equal(svc.metadata.name, "kube-dns");
  assert.equal(svc.spec.clusterIP, "10.96.0.10");
  assert.deepEqual(svc.spec.ports.map((p: any) => `${p.port}/${p.protocol}`), ["53/UDP", "53/TCP", "9153/TCP"]);
  const corefile = objs.find((o) => o.kind === "ConfigMap").data.Corefile as string;
  assert.match(corefile, /kubernetes cluster\.local in-addr\.arpa ip6\.arpa/);
  assert.doesNotMatch(corefile, /^\s*forward /m);
  assert.doesNotMatch(corefile, /^\s*loop$/m);
  const withUp = corednsObjects(cluster, { upstream: true }).find((o) => o.kind === "ConfigMap")!.data as any;
  assert.match(withUp.Corefile, /forward \. \/etc\/resolv\.conf/);
  assert.match(withUp.Corefile, /^\s*loop$/m);
  const dep = objs.find((o) => o.kind === "Deployment");
  assert.equal(dep.spec.template.spec.containers[0].image, "registry.k8s.io/coredns/coredns:v1.14.6");
  assert.equal(dep.spec.template.spec.containers[0].imagePullPolicy, "IfNotPresent");
  assert.ok(dep.spec.template.spec.tolerations.some((t: any) => t.key === "node-role.kubernetes.io/control-plane"));
  assert.equal(objs.find((o) => o.kind === "ClusterRole").metadata.name, "system:coredns");
});

test("resolv.conf: loopback nameservers (Docker's 127.0.0.11) are not upstreams", () => {
  const ns = nameservers("# x\nnameserver 127.0.0.11\noptions ndots:0\n");
  assert.deepEqual(ns, ["127.0.0.11"]);
  assert.equal(ns.some(isUpstreamNameserver), false);
  assert.equal(nameservers("nameserver 10.0.0.2\n").some(isUpstreamNameserver), true);
});

test("mark-control-plane: taint unless also a worker; remove it when it is a worker", () => {
  const node = (taints: any[]) => ({ apiVersion: "v1", kind: "Node", metadata: { name: "cp1", labels: {} }, spec: { taints } });
  const cpOnly = { name: "cp1", roles: ["control-plane"] } as unknown as Host;
  const both = { name: "cp1", roles: ["control-plane", "worker"] } as unknown as Host;
  const other = { key: "node.kubernetes.io/not-ready", effect: "NoSchedule" };
  const ours = { key: "node-role.kubernetes.io/control-plane", effect: "NoSchedule" };
  assert.deepEqual(controlPlaneMarks(cpOnly, node([other])).taints, [other, ours]);
  assert.deepEqual(controlPlaneMarks(both, node([other, ours])).taints, [other]);
  const done = controlPlaneMarks(both, { ...node([other]), metadata: { name: "cp1", labels: { "node-role.kubernetes.io/control-plane": "", "node.kubernetes.io/exclude-from-external-load-balancers": "" } } });
  assert.deepEqual(done.changes, []);
});

test("join token reuse: the usable token that lasts longest", () => {
  const now = new Date("2026-11-24T09:00:00Z");
  const mk = (id: string, exp?: string, usages = ["authentication", "signing"]) => ({
    id, secret: "0123456789abcdef", usages, groups: ["system:bootstrappers:kubeadm:default-node-token"], ...(exp ? { expires: new Date(exp) } : {}),
  });
  assert.equal(pickJoinToken([mk("aaaaaa", "2026-11-24T09:30:00Z")], now), undefined, "less than an hour left");
  assert.equal(pickJoinToken([mk("aaaaaa", "2026-11-25T09:00:00Z"), mk("bbbbbb", "2026-11-26T09:00:00Z")], now)?.id, "bbbbbb");
  assert.equal(pickJoinToken([mk("aaaaaa", "2026-11-25T09:00:00Z"), mk("cccccc")], now)?.id, "cccccc");
  assert.equal(pickJoinToken([mk("dddddd", undefined, ["authentication"])], now), undefined, "not for signing");
});

test("isSubset ignores what the server adds and sees what changed", () => {
  assert.equal(isSubset({ a: 1, b: { c: [1, { d: "x" }] } }, { a: 1, z: 2, b: { c: [1, { d: "x", e: 3 }] } }), true);
  assert.equal(isSubset({ b: { c: [1] } }, { b: { c: [1, 2] } }), false);
  assert.equal(isSubset({ a: "x" }, { a: "y" }), false);
});

test("kubectl transport: object paths map to kubectl's resource names; errors to statuses", async () => {
  const { kubectlTarget, statusOfKubectlError } = await import("../../provisioner/bootstrap/kubectl.js");
  assert.deepEqual(kubectlTarget("/api/v1/nodes/cp1"), { resource: "nodes", name: "cp1" });
  assert.deepEqual(kubectlTarget("/api/v1/namespaces/kube-public/configmaps/cluster-info"), { resource: "configmaps", name: "cluster-info", namespace: "kube-public" });
  assert.deepEqual(kubectlTarget("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/kubeadm%3Aget-nodes"), {
    resource: "clusterrolebindings.rbac.authorization.k8s.io",
    name: "kubeadm:get-nodes",
  });
  assert.equal(statusOfKubectlError('Error from server (NotFound): configmaps "x" not found'), 404);
  assert.equal(statusOfKubectlError("Error from server (AlreadyExists): secrets \"bootstrap-token-abcdef\" already exists"), 409);
  assert.equal(statusOfKubectlError("Error from server (Conflict): Operation cannot be fulfilled"), 409);
  assert.equal(statusOfKubectlError("The connection to the server 10.0.0.1:6443 was refused"), 500);
});

test("firstNodeCIDR: the first node-sized block of a single IPv4 pod subnet", async () => {
  const { firstNodeCIDR } = await import("../../provisioner/tasks/addons.js");
  assert.equal(firstNodeCIDR("10.244.0.0/16", 24), "10.244.0.0/24");
  assert.equal(firstNodeCIDR("192.168.64.0/18", 26), "192.168.64.0/26");
  assert.equal(firstNodeCIDR("10.244.0.0/16,fd00::/56", 24), undefined, "dual stack: left to the controller-manager");
  assert.equal(firstNodeCIDR("10.244.0.0/25", 24), undefined);
});
