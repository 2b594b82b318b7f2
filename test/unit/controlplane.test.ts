// The control plane's rendering: flags compared with what kubeadm (the bundle's binary) writes for
// the same cluster, the manifests/units/kubelet configuration as YAML, the renderer, the diagnosis.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { parse as parseYaml } from "yaml";
import { parseClusterText } from "../../provisioner/spec/load.js";
import type { Host } from "../../provisioner/engine/task.js";
import { componentFlags, flagsToArgs, type ComponentName } from "../../provisioner/tasks/controlplane-flags.js";
import { renderStaticPod, renderUnit } from "../../provisioner/tasks/controlplane.js";
import { clusterDNSAddress, kubeletArgs, podResolvConf, renderKubeletConfig } from "../../provisioner/tasks/kubelet.js";
import { matchKnownCauses } from "../../provisioner/tasks/diagnose.js";
import { renderText, TemplateError } from "../../provisioner/render.js";
import { bundleDir } from "../../provisioner/paths.js";
import { DEFAULT_KUBERNETES_VERSION } from "../../provisioner/constants.js";
import { imagesForNode, etcdImageTag, imageCatalog } from "../../provisioner/images/catalog.js";
import { diagnosis } from "../../provisioner/tasks/wait.js";

const clusterText = (extra = "") => `apiVersion: kubeprov/v1alpha1
kind: Cluster
metadata:
  name: demo
spec:
  networking:
    podSubnet: 10.244.0.0/16
    serviceSubnet: 10.96.0.0/12
  containerRuntime:
    cgroupDriver: cgroupfs
${extra}  hosts:
  - name: node1
    address: 10.213.0.2
    roles: [control-plane, worker]
`;

function hostOf(cluster: ReturnType<typeof parseClusterText>, facts?: Partial<Host["facts"]>): Host {
  const spec = cluster.spec.hosts[0];
  return {
    name: spec.name,
    address: spec.address,
    nodeIP: spec.internalAddress ?? spec.address,
    roles: spec.roles,
    spec,
    transport: undefined as never,
    facts: facts as Host["facts"],
  };
}

const kubeadm = join(bundleDir(DEFAULT_KUBERNETES_VERSION), "bin", "kubeadm");

/** The command lines kubeadm writes into its static pod manifests for the same cluster (dry run into a temp dir). */
function kubeadmCommands(): Map<string, string[]> {
  const dir = mkdtempSync(join(tmpdir(), "kubeprov-kubeadm-"));
  try {
    writeFileSync(
      join(dir, "cfg.yaml"),
      `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint:
  advertiseAddress: 10.213.0.2
nodeRegistration:
  name: node1
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: ${DEFAULT_KUBERNETES_VERSION}
clusterName: demo
networking:
  podSubnet: 10.244.0.0/16
  serviceSubnet: 10.96.0.0/12
`,
    );
    const env = { ...process.env, KUBEADM_INIT_DRYRUN_DIR: join(dir, "out") };
    execFileSync(kubeadm, ["init", "phase", "control-plane", "all", "--config", join(dir, "cfg.yaml"), "--dry-run"], { env, stdio: "pipe" });
    execFileSync(kubeadm, ["init", "phase", "etcd", "local", "--config", join(dir, "cfg.yaml"), "--dry-run"], { env, stdio: "pipe" });
    const out = new Map<string, string[]>();
    for (const c of ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]) {
      const pod = parseYaml(readFileSync(join(dir, "out", `${c}.yaml`), "utf8")) as { spec: { containers: Array<{ command: string[] }> } };
      out.set(c, pod.spec.containers[0].command);
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test("flags agree with kubeadm's static pods for the same cluster (bundle's kubeadm)", { skip: !existsSync(kubeadm) && "no kubeadm in the bundle" }, () => {
  const cluster = parseClusterText(clusterText(), "test.yaml");
  const host = hostOf(cluster);
  const theirs = kubeadmCommands();
  // Where kubeprov differs from kubeadm on purpose:
  const ours_only: Record<string, string[]> = {
    etcd: ["--initial-cluster-state=new"],
    "kube-controller-manager": ["--node-cidr-mask-size=24", "--kube-api-qps=100", "--kube-api-burst=200"],
  };
  for (const c of ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"] as ComponentName[]) {
    const ours = flagsToArgs(componentFlags(c, cluster, host)).filter((a) => !(ours_only[c] ?? []).includes(a)).sort();
    const kubeadmArgs = theirs.get(c)!.slice(1).sort();
    assert.deepEqual(ours, kubeadmArgs, `${c} flags differ from kubeadm's`);
  }
});

test("static pod manifests and systemd units carry the same flags; extraArgs override and add", () => {
  const cluster = parseClusterText(
    clusterText(`  controlPlane:
    extraArgs:
      apiserver:
        v: "2"
        authorization-mode: "Node,RBAC"
        audit-log-path: "/var/log/a b.log"
`),
    "test.yaml",
  );
  const host = hostOf(cluster);
  for (const c of ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"] as ComponentName[]) {
    const pod = parseYaml(renderStaticPod(cluster, host, c, `registry.k8s.io/${c}:test`)) as {
      metadata: { name: string; namespace: string };
      spec: { hostNetwork: boolean; containers: Array<{ image: string; command: string[]; imagePullPolicy: string }> };
    };
    assert.equal(pod.metadata.name, c);
    assert.equal(pod.metadata.namespace, "kube-system");
    assert.equal(pod.spec.hostNetwork, true);
    const ctr = pod.spec.containers[0];
    assert.equal(ctr.image, `registry.k8s.io/${c}:test`);
    const args = flagsToArgs(componentFlags(c, cluster, host));
    assert.deepEqual(ctr.command, [c, ...args]);
    const unit = renderUnit(cluster, host, c);
    const execStart = /ExecStart=([\s\S]*?)\n\n?Restart=/.exec(unit)![1].replace(/ \\\n\s+/g, " ");
    assert.ok(execStart.startsWith(`/usr/local/bin/${c} `), unit);
    for (const a of args) assert.ok(execStart.includes(a.includes(" ") ? `"${a}"` : a), `${c} unit lacks ${a}`);
  }
  const api = flagsToArgs(componentFlags("kube-apiserver", cluster, host));
  assert.ok(api.includes("--v=2"));
  assert.ok(api.includes("--audit-log-path=/var/log/a b.log"));
  assert.equal(api.filter((a) => a.startsWith("--authorization-mode=")).length, 1);
});

test("kubelet configuration: cgroup driver, clusterDNS = 10th service address, container node settings", () => {
  const cluster = parseClusterText(clusterText(), "test.yaml");
  assert.equal(clusterDNSAddress(cluster), "10.96.0.10");
  const inContainer = parseYaml(renderKubeletConfig(cluster, hostOf(cluster, { container: true, cgroupVersion: 1 }))) as Record<string, unknown>;
  assert.equal(inContainer.kind, "KubeletConfiguration");
  assert.equal(inContainer.cgroupDriver, "cgroupfs");
  assert.deepEqual(inContainer.clusterDNS, ["10.96.0.10"]);
  assert.equal(inContainer.clusterDomain, "cluster.local");
  assert.equal(inContainer.cgroupRoot, "/kubeprov/demo/node1");
  assert.equal(inContainer.failCgroupV1, false);
  assert.equal(inContainer.failSwapOn, false);
  assert.equal(inContainer.staticPodPath, "/etc/kubernetes/manifests");
  assert.equal((inContainer.authorization as { mode: string }).mode, "Webhook");
  const onHost = parseYaml(renderKubeletConfig(cluster, hostOf(cluster, { container: false, cgroupVersion: 2 }))) as Record<string, unknown>;
  assert.equal(onHost.cgroupRoot, undefined);
  assert.equal(onHost.failCgroupV1, undefined);
  assert.equal(onHost.failSwapOn, true);
  const args = kubeletArgs(cluster, hostOf(cluster));
  assert.ok(args.includes("--node-ip=10.213.0.2") && args.includes("--hostname-override=node1"));
  assert.ok(!args.some((a) => a.startsWith("--bootstrap-kubeconfig")));
});

test("the pods' resolv.conf drops loopback nameservers (Docker's 127.0.0.11)", () => {
  const out = podResolvConf("# docker\nnameserver 127.0.0.11\nnameserver 10.213.0.1\nsearch example.test\noptions ndots:0\n");
  assert.ok(!out.includes("127.0.0.11"));
  assert.ok(out.includes("nameserver 10.213.0.1"));
  assert.ok(out.includes("search example.test"));
});

test("renderer: unknown placeholders are errors naming them and their lines", () => {
  assert.equal(renderText("a {{x}} b {{ y }}", { x: 1, y: "z" }), "a 1 b z");
  assert.throws(() => renderText("ok\n{{missing}}", {}, "t.yaml"), (e: unknown) => e instanceof TemplateError && /t\.yaml.*missing \(line 2\)/.test((e as Error).message));
});

test("images: names as kubeadm spells them; which nodes need which", () => {
  assert.equal(etcdImageTag("v3.7.0"), "3.7.0-0");
  const refs = imageCatalog({ kubernetesVersion: "v1.37.2", etcdVersion: "v3.7.0", corednsVersion: "v1.14.6" }).map((r) => r.ref);
  assert.deepEqual(refs.sort(), [
    "registry.k8s.io/coredns/coredns:v1.14.6",
    "registry.k8s.io/etcd:3.7.0-0",
    "registry.k8s.io/kube-apiserver:v1.37.2",
    "registry.k8s.io/kube-controller-manager:v1.37.2",
    "registry.k8s.io/kube-proxy:v1.37.2",
    "registry.k8s.io/kube-scheduler:v1.37.2",
    "registry.k8s.io/pause:3.10.2",
  ]);
  assert.equal(imagesForNode({ controlPlane: true, mode: "static-pods" }).length, 7);
  assert.deepEqual(imagesForNode({ controlPlane: true, mode: "systemd" }).sort(), ["coredns", "kube-proxy", "pause"]);
});

test("diagnosis names the crash-looping component, shows its log and the known cause", () => {
  const d = diagnosis(
    [
      { component: "etcd", attempts: 1, running: true, log: "serving client traffic" },
      { component: "kube-apiserver", attempts: 3, running: false, log: "Error: unknown flag: --no-such-flag\nUsage:" },
      { component: "kube-controller-manager", attempts: 1, running: true, log: "" },
      { component: "kube-scheduler", attempts: 1, running: true, log: "" },
      { component: "kubelet", attempts: 1, running: true, log: "" },
    ],
    "static-pods",
    "connection refused",
  );
  assert.match(d.summary, /kube-apiserver exited \(unknown-flag\), restarted 2 times/);
  assert.match(d.details, /unknown flag: --no-such-flag/);
  assert.match(d.details, /cause \(unknown-flag\)/);
  assert.ok(!/etcd/.test(d.summary));
  assert.deepEqual(matchKnownCauses("listen tcp 0.0.0.0:6443: bind: address already in use").map((c) => c.id), ["port-in-use"]);
  assert.deepEqual(matchKnownCauses('failed to get sandbox image "registry.k8s.io/pause:3.10.2": failed to pull image').map((c) => c.id), ["image-missing"]);
});
