// Image repository and registry mirrors: the names every image gets under spec.images.repository
// (compared with what kubeadm, the bundle's binary, lists for the same --image-repository), the
// containerd files (hosts.toml per registry in containerd's hosts.md format, config.toml's
// config_path and sandbox image), the cluster-file checks with file:line and the `up` flags.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { parseClusterText } from "../../provisioner/spec/load.js";
import { ConfigError, UsageError } from "../../provisioner/errors.js";
import { bundleDir } from "../../provisioner/paths.js";
import { COREDNS_VERSION, DEFAULT_KUBERNETES_VERSION, ETCD_VERSION, IMAGE_MIRROR_CN } from "../../provisioner/constants.js";
import { clusterImageRef, imageRef, refUnderRepository, type ImageName } from "../../provisioner/images/catalog.js";
import { hostsTomlFiles, parseMirrorFlags, renderHostsToml } from "../../provisioner/images/registries.js";
import { corednsImage, flannelObjects, kubeProxyImage } from "../../provisioner/bootstrap/manifests.js";
import { pauseImage, renderContainerdConfig } from "../../provisioner/tasks/prepare.js";
import { planImageSources, recordedImageSources } from "../../provisioner/cli/commands/up.js";
import { renderDriverClusterFile } from "../../provisioner/drivers/clusterfile.js";
import { clusterConfiguration } from "../../provisioner/bootstrap/kubeadm-config.js";

const REPO = "kpt-mirror-registry:5000/k8s";
const clusterText = (spec = "") => `apiVersion: kubeprov/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
${spec}  hosts:
    - {name: node1, address: 10.213.0.2, roles: [control-plane, worker]}
`;
const versions = { kubernetesVersion: DEFAULT_KUBERNETES_VERSION, etcdVersion: ETCD_VERSION, corednsVersion: COREDNS_VERSION, flannelVersion: "v0.28.10", localPathProvisionerVersion: "v0.0.30", metricsServerVersion: "v0.8.0" };

test("image names under a repository are the ones kubeadm lists for the same --image-repository", (t) => {
  const kubeadm = join(bundleDir(DEFAULT_KUBERNETES_VERSION), "bin", "kubeadm");
  if (!existsSync(kubeadm)) return t.skip("no kubeadm in the bundle");
  const listed = (extra: string[]) =>
    execFileSync(kubeadm, ["config", "images", "list", "--kubernetes-version", DEFAULT_KUBERNETES_VERSION, ...extra], { encoding: "utf8" }).trim().split("\n").sort();
  const names: ImageName[] = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "coredns", "pause", "etcd"];
  const cluster = parseClusterText(clusterText(`  images: {repository: ${REPO}}\n`), "cluster.yaml");
  assert.deepEqual(names.map((n) => clusterImageRef(cluster, n, versions)).sort(), listed(["--image-repository", REPO]));
  // Without a repository: upstream's names, unchanged.
  const plain = parseClusterText(clusterText(), "cluster.yaml");
  assert.deepEqual(names.map((n) => clusterImageRef(plain, n, versions)).sort(), listed([]));
});

test("every image the cluster runs is named under the repository: pause, kube-proxy, CoreDNS, add-ons", () => {
  const cluster = parseClusterText(clusterText(`  images: {repository: ${REPO}}\n`), "cluster.yaml");
  assert.equal(pauseImage(cluster), `${REPO}/pause:3.10.2`);
  assert.equal(kubeProxyImage(cluster), `${REPO}/kube-proxy:${DEFAULT_KUBERNETES_VERSION}`);
  assert.equal(corednsImage(cluster), `${REPO}/coredns:${COREDNS_VERSION}`);
  const ds = flannelObjects(cluster, "v0.28.10").find((o) => o.kind === "DaemonSet") as unknown as { spec: { template: { spec: { containers: Array<{ image: string }>; initContainers?: Array<{ image: string }> } } } };
  for (const c of [...ds.spec.template.spec.containers, ...(ds.spec.template.spec.initContainers ?? [])]) assert.equal(c.image, `${REPO}/flannel:v0.28.10`);
  assert.equal(imageRef("local-path-provisioner", versions, REPO), `${REPO}/local-path-provisioner:v0.0.30`);
  assert.equal(imageRef("metrics-server", versions, REPO), `${REPO}/metrics-server:v0.8.0`);
  // The bundle's tar names (upstream's) map to the cluster's by image name and tag.
  assert.equal(refUnderRepository(REPO, "coredns", `registry.k8s.io/coredns/coredns:${COREDNS_VERSION}`), `${REPO}/coredns:${COREDNS_VERSION}`);
  // kubeadm-config says the same, so a node joined by kubeadm uses the same repository.
  const cc = clusterConfiguration(cluster, { firstControlPlaneIP: "10.213.0.2", etcdImage: clusterImageRef(cluster, "etcd", versions) });
  assert.equal(cc["imageRepository"], REPO);
  assert.deepEqual((cc["etcd"] as { local: { imageRepository?: string } }).local.imageRepository, REPO);
  const plain = parseClusterText(clusterText(), "cluster.yaml");
  assert.equal(clusterConfiguration(plain, { firstControlPlaneIP: "10.213.0.2" })["imageRepository"], "registry.k8s.io");
  assert.equal(pauseImage(plain), "registry.k8s.io/pause:3.10.2");
  assert.equal(corednsImage(plain), `registry.k8s.io/coredns/coredns:${COREDNS_VERSION}`);
});

test("containerd's config.toml: sandbox image under the repository, config_path in the CRI registry section", () => {
  const cluster = parseClusterText(clusterText(`  images: {repository: ${REPO}}\n`), "cluster.yaml");
  const text = renderContainerdConfig(cluster, { container: true, cniBinDir: "/usr/lib/cni" });
  assert.match(text, new RegExp(`sandbox_image = "${REPO}/pause:3\\.10\\.2"`));
  assert.match(text, /\[plugins\."io\.containerd\.grpc\.v1\.cri"\.registry\]\n\s+config_path = "\/etc\/containerd\/certs\.d"/);
});

test("hosts.toml: the registry's upstream server, then each mirror for pull and resolve (containerd's hosts.md format)", () => {
  assert.equal(
    renderHostsToml("docker.io", ["https://mirror.example.com/", "http://10.0.0.5:5000"]),
    [
      "# managed by kubeprov (prepare phase, cluster file spec.registryMirrors): local changes are replaced on the next run.",
      "# containerd's registry host configuration for docker.io: mirrors first, in order, then the server.",
      'server = "https://registry-1.docker.io"',
      "",
      '[host."https://mirror.example.com"]',
      '  capabilities = ["pull", "resolve"]',
      "",
      '[host."http://10.0.0.5:5000"]',
      '  capabilities = ["pull", "resolve"]',
      "",
    ].join("\n"),
  );
  assert.match(renderHostsToml("registry.example.com:5000", ["http://registry.example.com:5000"]), /^server = "https:\/\/registry\.example\.com:5000"$/m);
  // _default: no server line (it applies to any registry without its own directory).
  assert.doesNotMatch(renderHostsToml("_default", ["https://m.example.com"]), /^server/m);
  assert.deepEqual(
    hostsTomlFiles({ "quay.io": ["https://q.example.com"], "docker.io": ["https://d.example.com"] }).map((f) => f.path),
    ["/etc/containerd/certs.d/docker.io/hosts.toml", "/etc/containerd/certs.d/quay.io/hosts.toml"],
  );
});

test("a bad repository, registry or mirror URL names the file, line and field", () => {
  const text = clusterText(`  images:
    repository: https://registry.example.com/k8s
  registryMirrors:
    docker.io: [ftp://mirror.example.com, https://ok.example.com]
    "bad host!": [https://x.example.com]
    quay.io: ["https://user:secret@q.example.com"]
    ghcr.io: [https://g.example.com/v2?x=1]
`);
  let err: unknown;
  try {
    parseClusterText(text, "cluster.yaml");
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof ConfigError, String(err));
  const msg = [(err as Error).message, ...((err as unknown as { problems?: string[] }).problems ?? [])].join("\n");
  assert.match(msg, /cluster\.yaml:6:17 spec\.images\.repository: "https:\/\/registry\.example\.com\/k8s" has a URL scheme/);
  assert.match(msg, /cluster\.yaml:8:17 spec\.registryMirrors\["docker\.io"\]\[0\]: "ftp:\/\/mirror\.example\.com": the scheme must be http or https/);
  assert.match(msg, /cluster\.yaml:9:5 spec\.registryMirrors\["bad host!"\]: "bad host!" is not a registry host/);
  assert.match(msg, /cluster\.yaml:10:15 spec\.registryMirrors\["quay\.io"\]\[0\]: .*credentials do not belong/);
  assert.doesNotMatch(msg, /secret/, "a URL with credentials is not echoed");
  assert.match(msg, /spec\.registryMirrors\["ghcr\.io"\]\[0\]: .*no query or fragment/);
  for (const bad of ["Registry.example.com/K8S", "registry.example.com/k8s:v1", "registry.example.com:99999/k8s", "reg/-x"]) {
    assert.throws(() => parseClusterText(clusterText(`  images: {repository: "${bad}"}\n`), "c.yaml"), /c\.yaml:5:\d+ spec\.images\.repository/, bad);
  }
  for (const good of ["registry.example.com", "10.0.0.5:5000/k8s", "registry.cn-hangzhou.aliyuncs.com/google_containers", "localhost:5000/a/b__c"]) {
    parseClusterText(clusterText(`  images: {repository: "${good}"}\n`), "c.yaml");
  }
});

test("up flags: --image-repository, repeated --registry-mirror (REGISTRY=URL), --image-mirror-country cn; absent flags keep the recorded ones", () => {
  assert.deepEqual(planImageSources({ imageRepository: REPO, registryMirror: ["http://m:5000", "quay.io=https://q.example.com", "http://m2:5000"] }), {
    images: { repository: REPO },
    registryMirrors: { "docker.io": ["http://m:5000", "http://m2:5000"], "quay.io": ["https://q.example.com"] },
  });
  assert.deepEqual(planImageSources({ imageMirrorCountry: "cn" }), { images: { repository: IMAGE_MIRROR_CN } });
  assert.equal(IMAGE_MIRROR_CN, "registry.cn-hangzhou.aliyuncs.com/google_containers");
  // An explicit repository wins over the country's.
  assert.deepEqual(planImageSources({ imageMirrorCountry: "CN", imageRepository: REPO }), { images: { repository: REPO } });
  const previous = { images: { repository: REPO }, registryMirrors: { "docker.io": ["http://m:5000"] } };
  assert.deepEqual(planImageSources({}, previous), previous);
  assert.deepEqual(planImageSources({ registryMirror: ["http://n:5000"] }, previous), { images: { repository: REPO }, registryMirrors: { "docker.io": ["http://n:5000"] } });
  // What up writes is what it reads back on the next run.
  const text = renderDriverClusterFile({ name: "demo", driver: "docker", kubernetesVersion: DEFAULT_KUBERNETES_VERSION, machines: [{ node: "demo-control-plane", machine: "demo-control-plane", address: "10.213.0.2", roles: ["control-plane", "worker"], state: "running", reach: { kind: "ssh", host: "10.213.0.2", port: 22, user: "root", identityFile: "/k", knownHostsFile: "/kh" } }], identityFile: "/k", knownHostsFile: "/kh", artifactsDir: "/b", ...previous });
  assert.deepEqual(recordedImageSources(text), previous);
  const cluster = parseClusterText(text, "cluster.yaml");
  assert.deepEqual(cluster.spec.registryMirrors, previous.registryMirrors);
  for (const [o, re] of [
    [{ imageMirrorCountry: "de" }, /--image-mirror-country "de": no mirror set known for it \(known: cn\)/],
    [{ imageRepository: "http://r/x" }, /--image-repository: "http:\/\/r\/x" has a URL scheme/],
    [{ registryMirror: ["mirror.example.com"] }, /--registry-mirror "mirror.example.com": .* is not a URL/],
    [{ registryMirror: ["bad_host=http://m:5000"] }, /--registry-mirror "bad_host=http:\/\/m:5000": "bad_host" is not a registry host/],
  ] as const) {
    assert.throws(() => planImageSources(o as Parameters<typeof planImageSources>[0]), (e: unknown) => e instanceof UsageError && re.test(e.message), JSON.stringify(o));
  }
  assert.deepEqual(parseMirrorFlags(["http://m:5000", "http://m:5000"]).mirrors, { "docker.io": ["http://m:5000"] });
  assert.doesNotMatch(parseMirrorFlags(["https://u:hunter2@m.example.com"]).problems.join("\n"), /hunter2/);
});
