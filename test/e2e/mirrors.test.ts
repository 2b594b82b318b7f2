// Registry mirrors and the image repository on one one-node cluster, against a real registry:
// Debian's docker-registry (github.com/docker/distribution) in a container on the cluster's Docker
// network, reached by its container name. `up --image-repository REG:5000/k8s --registry-mirror
// http://REG:5000 --registry-mirror REG:5000=http://REG:5000`, then:
// - a pod whose image is docker.io/library/<ours>:1 (never on the node; nothing reaches Docker
//   Hub from here) runs, pulled through the mirror (the registry's log shows the manifest request);
// - CoreDNS's image, removed from the node, comes back from the repository when its pod is
//   replaced;
// - without the registry's hosts.toml the same pull fails (containerd talks HTTPS to the plain-HTTP
//   registry); `up` writes it again without restarting containerd, and the pull works at once.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { COREDNS_VERSION } from "../../provisioner/constants.js";
import { DEBIAN_BASE_IMAGE } from "../../provisioner/images/build.js";
import { networkName } from "../../provisioner/drivers/docker/plan.js";
import { dockerCleanup, KUBECTL, kubectl, kubeprov, onNode, removeTestCluster, summaryOf, waitFor, type Run } from "../helpers/cluster-e2e.js";

const NAME = "kpt-mirror";
const NODE = `${NAME}-control-plane`;
/** The registry's container: its name is its host name on the cluster network. */
const REG = "kpt-mirror-registry";
const REG_HOST = `${REG}:5000`;
const REG_IMAGE = "kpt-mirror-registry:test";
const REPO = `${REG_HOST}/k8s`;
const OURS = "kpt-mirror-ours";
const OURS_IMAGE = `${OURS}:test`;
const MIRROR_FLAGS = ["--image-repository", REPO, "--registry-mirror", `http://${REG_HOST}`, "--registry-mirror", `${REG_HOST}=http://${REG_HOST}`];
const home = mkdtempSync(join(tmpdir(), "kpt-mirror-"));
const work = mkdtempSync(join(tmpdir(), "kpt-mirror-build-"));
const kubeconfig = join(home, "admin.conf");
const t0 = Date.now();

async function docker(args: string[], input?: string): Promise<Run> {
  const s = Date.now();
  const r = await execa("docker", args, { reject: false, ...(input !== undefined ? { input } : {}) });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), ms: Date.now() - s };
}

async function must(r: Promise<Run>, what: string): Promise<Run> {
  const x = await r;
  assert.equal(x.code, 0, `${what}: ${x.stderr || x.stdout}`);
  return x;
}

/** The registry's request log since `since` (RFC 3339). */
async function registryLog(since: string): Promise<string> {
  const r = await docker(["logs", "--since", since, REG]);
  return r.stdout + r.stderr;
}

/** The image from the registry binary of Debian's docker-registry package, on the Debian base the nodes' images use. */
async function buildRegistryImage(): Promise<void> {
  copyFileSync("/usr/bin/docker-registry", join(work, "registry"));
  writeFileSync(
    join(work, "config.yml"),
    ["version: 0.1", "log: {level: info, accesslog: {disabled: false}}", "storage: {filesystem: {rootdirectory: /var/lib/registry}}", "http: {addr: ':5000'}", ""].join("\n"),
  );
  writeFileSync(
    join(work, "Dockerfile"),
    [`FROM ${DEBIAN_BASE_IMAGE}`, "COPY registry /usr/local/bin/registry", "COPY config.yml /etc/registry/config.yml", 'ENTRYPOINT ["/usr/local/bin/registry", "serve", "/etc/registry/config.yml"]', ""].join("\n"),
  );
  await must(docker(["build", "-q", "-t", REG_IMAGE, work]), "registry image");
}

/** An image of our own with content no node has: the pause image plus a random file. */
async function buildOurImage(): Promise<string> {
  const dir = join(work, "ours");
  await execa("mkdir", ["-p", dir]);
  writeFileSync(join(dir, "stamp"), `${Date.now()} ${Math.random()}\n`);
  writeFileSync(join(dir, "Dockerfile"), ["FROM registry.k8s.io/pause:3.10.2", "COPY stamp /stamp", ""].join("\n"));
  await must(docker(["build", "-q", "-t", OURS_IMAGE, dir]), "our image");
  const tar = join(work, "ours.tar");
  await must(docker(["save", "-o", tar, OURS_IMAGE]), "docker save");
  return tar;
}

let upMs = 0;

before(async () => {
  await docker(["rm", "-f", REG]);
  await dockerCleanup(NAME);
  // The machine (and the cluster network) first, so that the registry can join the network.
  const machines = await kubeprov(home, ["up", "--name", NAME, "--no-kubernetes", "-o", "json"]);
  assert.equal(machines.code, 0, machines.stderr.slice(-3000));
  await buildRegistryImage();
  // Not labelled io.kubeprov.cluster: `up` takes every container with that label for one of the
  // cluster's machines (and would delete one it did not plan). after() removes it by name.
  await must(docker(["run", "-d", "--name", REG, "--hostname", REG, "--network", networkName(NAME), "--label", `io.kubeprov.test=${NAME}`, REG_IMAGE]), "registry container");
  const up = await kubeprov(home, ["up", "--name", NAME, "--no-kubeconfig", "-o", "json", ...MIRROR_FLAGS]);
  assert.equal(up.code, 0, up.stdout.split("\n").filter((l) => l.includes('"failed"')).join("\n") + up.stderr.slice(-3000));
  upMs = up.ms;
  process.stderr.write(`# up (1 node, image repository ${REPO}, 2 registry host files): ${(up.ms / 1000).toFixed(1)} s\n`);
  writeFileSync(kubeconfig, (await kubeprov(home, ["kubeconfig", "--name", NAME])).stdout, { mode: 0o600 });
});

after(async () => {
  await docker(["rm", "-f", "-v", REG]);
  await removeTestCluster(home, NAME);
  await docker(["rmi", "-f", REG_IMAGE, OURS_IMAGE]);
  rmSync(work, { recursive: true, force: true });
  process.stderr.write(`# mirrors test file: ${((Date.now() - t0) / 1000).toFixed(1)} s (up ${(upMs / 1000).toFixed(1)} s)\n`);
});

test("the nodes' containerd: hosts.toml per registry (0644), config_path set, pause/control plane/CoreDNS named under the repository and present", async () => {
  const files = await must(onNode(NODE, `cd /etc/containerd/certs.d && for f in */hosts.toml; do stat -c '%a %n' "$f"; cat "$f"; done`), "hosts.toml");
  assert.match(files.stdout, /^644 docker\.io\/hosts\.toml$/m);
  assert.match(files.stdout, /^644 kpt-mirror-registry:5000\/hosts\.toml$/m);
  assert.match(files.stdout, /server = "https:\/\/registry-1\.docker\.io"\n\n\[host\."http:\/\/kpt-mirror-registry:5000"\]\n {2}capabilities = \["pull", "resolve"\]/);
  const config = await must(onNode(NODE, "cat /etc/containerd/config.toml; cat /etc/kubernetes/manifests/kube-apiserver.yaml | grep 'image:'"), "config");
  assert.match(config.stdout, /config_path = "\/etc\/containerd\/certs\.d"/);
  assert.match(config.stdout, new RegExp(`sandbox_image = "${REPO}/pause:`));
  assert.match(config.stdout, new RegExp(`image: ${REPO}/kube-apiserver:v`));
  const images = await must(onNode(NODE, "crictl images -o json"), "crictl images");
  const tags = (JSON.parse(images.stdout) as { images: Array<{ repoTags: string[] }> }).images.flatMap((i) => i.repoTags);
  for (const n of ["pause", "etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kube-proxy", "coredns", "flannel", "local-path-provisioner"])
    assert.ok(tags.some((t) => t.startsWith(`${REPO}/${n}:`)), `${REPO}/${n} on the node (have ${tags.join(" ")})`);
  // The pods run those names: nothing was pulled for them (the registry is empty so far).
  const pods = await must(kubectl(kubeconfig, ["get", "pods", "-A", "-o", "jsonpath={.items[*].spec.containers[*].image}"]), "pods");
  for (const image of pods.stdout.split(" ").filter(Boolean)) assert.ok(image.startsWith(`${REPO}/`), `pod image ${image} under ${REPO}`);
});

test("a pod's docker.io image that no node holds is pulled through the mirror", async () => {
  // Into the registry under library/<ours>, pushed from the node (the registry keeps only that).
  const tar = await buildOurImage();
  await must(docker(["cp", tar, `${NODE}:/tmp/ours.tar`]), "copy to node");
  const pushed = `${REG_HOST}/library/${OURS}:1`;
  await must(
    onNode(NODE, `ctr -n k8s.io images import /tmp/ours.tar >/dev/null && rm /tmp/ours.tar && ctr -n k8s.io images tag docker.io/library/${OURS_IMAGE} ${pushed} >/dev/null && ctr -n k8s.io images push --plain-http ${pushed} >/dev/null && ctr -n k8s.io images rm docker.io/library/${OURS_IMAGE} ${pushed} >/dev/null`),
    "push through ctr",
  );
  const before = await must(onNode(NODE, `ctr -n k8s.io images ls -q | grep -cx docker.io/library/${OURS}:1; true`), "ctr images ls");
  assert.equal(before.stdout.trim(), "0", "our image is not on the node before the pod");
  const since = new Date().toISOString();
  const pod = { apiVersion: "v1", kind: "Pod", metadata: { name: "ours", namespace: "default" }, spec: { terminationGracePeriodSeconds: 0, containers: [{ name: "ours", image: `docker.io/library/${OURS}:1` }] } };
  // Right after up the controller manager may not have made the namespace's default ServiceAccount yet.
  let applied = "";
  const created = await waitFor(async () => {
    const r = await execa(KUBECTL, ["--kubeconfig", kubeconfig, "apply", "-f", "-"], { input: JSON.stringify(pod), reject: false });
    applied = String(r.stderr);
    return r.exitCode === 0;
  }, 60_000, 1000);
  assert.notEqual(created, -1, applied);
  let phase = "";
  const ms = await waitFor(async () => {
    phase = (await kubectl(kubeconfig, ["get", "pod", "ours", "-o", "jsonpath={.status.phase}"])).stdout;
    return phase === "Running";
  }, 90_000);
  const events = (await kubectl(kubeconfig, ["get", "events", "--field-selector", "involvedObject.name=ours", "-o", "jsonpath={.items[*].message}"])).stdout;
  assert.notEqual(ms, -1, `pod ours not Running (phase ${phase}): ${events}`);
  process.stderr.write(`# docker.io/library/${OURS}:1 through the mirror: pod Running ${(ms / 1000).toFixed(1)} s after it was created\n`);
  const log = await registryLog(since);
  // containerd resolves the tag with HEAD (then fetches by digest); ns=docker.io marks a mirror request.
  assert.match(log, new RegExp(`"(HEAD|GET) /v2/library/${OURS}/manifests/1\\?ns=docker\\.io HTTP`), `the registry answered for docker.io:\n${log.slice(-2000)}`);
  const on = await must(onNode(NODE, `crictl images -o json`), "crictl");
  assert.match(on.stdout, new RegExp(`docker\\.io/library/${OURS}:1`));
});

test("CoreDNS's image, missing from the node, comes from the image repository", async () => {
  const ref = `${REPO}/coredns:${COREDNS_VERSION}`;
  await must(onNode(NODE, `ctr -n k8s.io images push --plain-http ${ref} >/dev/null`), "push CoreDNS's image");
  // Gone from the node under both names, so only a pull can bring it back.
  await must(onNode(NODE, `ctr -n k8s.io images rm ${ref} registry.k8s.io/coredns/coredns:${COREDNS_VERSION} >/dev/null`), "remove CoreDNS's image");
  const since = new Date().toISOString();
  await must(kubectl(kubeconfig, ["-n", "kube-system", "delete", "pod", "-l", "k8s-app=kube-dns", "--wait=false"]), "delete CoreDNS pods");
  const ms = await waitFor(async () => {
    const r = await kubectl(kubeconfig, ["-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "jsonpath={range .items[*]}{.metadata.deletionTimestamp}|{.status.containerStatuses[0].ready}{\"\\n\"}{end}"]);
    const rows = r.stdout.split("\n").filter(Boolean);
    return rows.length > 0 && rows.every((l) => l === "|true");
  }, 90_000);
  assert.notEqual(ms, -1, "CoreDNS ready again");
  process.stderr.write(`# CoreDNS image pulled from ${REPO}: ready ${(ms / 1000).toFixed(1)} s after its pods were deleted\n`);
  assert.match(await registryLog(since), new RegExp(`"(HEAD|GET) /v2/k8s/coredns/manifests/${COREDNS_VERSION.replace(/\./g, "\\.")}(\\?ns=${REG_HOST}|) HTTP`));
  await must(onNode(NODE, `crictl inspecti ${ref} >/dev/null`), "CoreDNS's image is on the node again");
});

test("without its hosts.toml the pull fails; up writes it back without restarting containerd and the pull works; a re-run changes nothing", async () => {
  const pid = async () => (await must(onNode(NODE, "systemctl show -p MainPID --value containerd"), "pid")).stdout.trim();
  const pidBefore = await pid();
  const image = `${REG_HOST}/library/${OURS}:1`;
  await must(onNode(NODE, `rm /etc/containerd/certs.d/${REG_HOST}/hosts.toml && crictl rmi ${image} >/dev/null 2>&1; true`), "remove hosts.toml");
  const refused = await onNode(NODE, `crictl pull ${image}`);
  assert.notEqual(refused.code, 0, "the pull must fail without the host file");
  assert.match(refused.stderr + refused.stdout, /server gave HTTP response to HTTPS client/);

  const again = await kubeprov(home, ["up", "--name", NAME, "--no-kubeconfig", "-o", "json"]);
  assert.equal(again.code, 0, again.stderr.slice(-2000));
  const tasks = again.stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { type: string; task?: string; status?: string });
  const status = (t: string) => tasks.find((e) => e.type === "task" && e.task === t)?.status;
  assert.equal(status("prepare/registry-mirrors"), "changed");
  assert.equal(status("prepare/containerd-config"), "ok", "config.toml unchanged: containerd not restarted");
  assert.equal(await pid(), pidBefore, "containerd kept running (same PID)");
  await must(onNode(NODE, `crictl pull ${image}`), "the pull works again at once");

  const third = await kubeprov(home, ["up", "--name", NAME, "--no-kubeconfig", "-o", "json"]);
  assert.equal(third.code, 0, third.stderr.slice(-2000));
  assert.equal(summaryOf(third.stdout)?.changed, 0, third.stdout.split("\n").filter((l) => l.includes('"changed"')).join("\n"));
});

test("a mirror that is down: up stops in preflight, naming the mirror and the node, before the node changes", async () => {
  // The node's own name on a port nothing listens on: the connection is refused inside the node.
  const down = `http://${NODE}:5999`;
  const r = await kubeprov(home, ["up", "--name", NAME, "--no-kubeconfig", "--registry-mirror", `quay.io=${down}`]);
  assert.equal(r.code, 1, r.stdout.slice(-2000) + r.stderr.slice(-2000));
  const said = r.stdout + r.stderr;
  assert.match(said, /RegistryMirrors/);
  assert.match(said, new RegExp(`spec\\.registryMirrors\\["quay\\.io"\\]: ${down.replace(/[.:/]/g, (c) => `\\${c}`)} does not work from here \\(the connection was refused or the address is unreachable\\)`));
  assert.match(said, new RegExp(NODE));
  assert.equal((await onNode(NODE, "test -e /etc/containerd/certs.d/quay.io")).code, 1, "no host file written for the failing mirror");
});
