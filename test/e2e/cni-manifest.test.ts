// networking.cni "manifest": a cluster file over SSH whose network add-on is a manifest of the
// user's own (test/e2e/fixtures/cni-manifest/mine.yaml) with an image kubeprov loads into the node.
// kubeprov writes no CNI configuration of its own; the add-on's makes the node Ready and gives pods
// their addresses; a second apply changes nothing.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { parse, stringify } from "yaml";
import { DEFAULT_KUBERNETES_VERSION } from "../../provisioner/constants.js";
import { packageRoot } from "../../provisioner/paths.js";
import { dockerCleanup, kubectl, kubeprov, onNode, summaryOf, waitFor } from "../helpers/cluster-e2e.js";

const NAME = "kpt-cnim";
const NODE = `${NAME}-control-plane`;
const IMAGE = `kpt-cni-installer:${NAME}`;
const home = mkdtempSync(join(tmpdir(), "kpt-cnim-"));
const file = join(home, "cluster.yaml");
const kubeconfig = join(home, "admin.conf");

before(async () => {
  await dockerCleanup(NAME);
  // The installer image: the bundle's kube-proxy image (it has sh and cp) under a name of our own.
  await execa("docker", ["tag", `registry.k8s.io/kube-proxy:${DEFAULT_KUBERNETES_VERSION}`, IMAGE]);
  const up = await kubeprov(home, ["up", "--name", NAME, "--no-kubernetes", "--no-kubeconfig"]);
  assert.equal(up.code, 0, up.stderr.slice(-3000));
  const doc = parse(readFileSync(join(home, "clusters", NAME, "cluster.yaml"), "utf8"));
  doc.spec.networking = { cni: "manifest", cniManifest: { file: "mine.yaml", images: [IMAGE] } };
  writeFileSync(file, stringify(doc));
  copyFileSync(join(packageRoot(), "test", "e2e", "fixtures", "cni-manifest", "mine.yaml"), join(home, "mine.yaml"));
});

after(async () => {
  await kubeprov(home, ["delete", "--name", NAME], 120_000).catch(() => undefined);
  await dockerCleanup(NAME);
  await execa("docker", ["rmi", IMAGE], { reject: false });
  rmSync(home, { recursive: true, force: true });
});

test("a manifest without its file is refused with the field named, before any host is touched", async () => {
  const bad = join(home, "bad.yaml");
  writeFileSync(bad, readFileSync(file, "utf8").replace(/\n\s+cniManifest:[\s\S]*?images:\n\s+- \S+\n/, "\n"));
  const r = await kubeprov(home, ["apply", "-f", bad]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /bad\.yaml:\d+:\d+ spec\.networking\.cni: cni "manifest" needs networking\.cniManifest\.file/);
});

// The archives `docker save` writes for a load, in this machine's temporary directory.
const savedArchives = () => new Set(readdirSync(tmpdir()).filter((d) => d.startsWith("kubeprov-image-load-")));

test("apply loads the add-on's image, applies its manifest; the node turns Ready on its CNI; a re-run changes nothing", async () => {
  const before = savedArchives();
  const r = await kubeprov(home, ["apply", "-f", file, "-o", "json"]);
  assert.equal(r.code, 0, r.stdout.split("\n").filter((l) => l.includes('"failed"')).join("\n") + r.stderr.slice(-3000));
  assert.deepEqual([...savedArchives()].filter((d) => !before.has(d)), [], "the image archive apply saved is removed when it ends");
  writeFileSync(kubeconfig, (await kubeprov(home, ["kubeconfig", "-f", file])).stdout, { mode: 0o600 });
  const ready = await waitFor(async () => (await kubectl(kubeconfig, ["get", "node", NODE, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"])).stdout === "True", 120_000, 1000);
  assert.notEqual(ready, -1, "node not Ready on the manifest's CNI");
  const files = await onNode(NODE, "ls /etc/cni/net.d; crictl images -o json | grep -c kpt-cni-installer");
  assert.match(files.stdout, /^10-mine\.conflist$/m);
  assert.doesNotMatch(files.stdout, /kubeprov-bridge/);
  // CoreDNS gets an address from the manifest's bridge.
  const dns = await waitFor(async () => {
    const p = await kubectl(kubeconfig, ["-n", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "jsonpath={.items[0].status.podIP}"]);
    return /^10\.244\.0\.\d+$/.test(p.stdout.trim());
  }, 90_000, 1000);
  assert.notEqual(dns, -1, "CoreDNS got no address from the manifest's CNI");
  assert.equal((await onNode(NODE, "ip link show mine0")).code, 0);
  const again = await kubeprov(home, ["apply", "-f", file, "-o", "json"]);
  assert.equal(again.code, 0, again.stderr.slice(-2000));
  assert.equal(summaryOf(again.stdout)?.changed, 0, again.stdout.split("\n").filter((l) => l.includes('"status":"changed"')).join("\n"));
});

test("switching the running cluster's network add-on is refused by preflight, naming the field, and changes nothing", async () => {
  const flannel = join(home, "flannel.yaml");
  const doc = parse(readFileSync(file, "utf8"));
  doc.spec.networking = { cni: "flannel" };
  writeFileSync(flannel, stringify(doc));
  const before = (await onNode(NODE, "ls /etc/cni/net.d; md5sum /etc/kubernetes/manifests/*")).stdout;
  const r = await kubeprov(home, ["apply", "-f", flannel, "-o", "json"]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stdout, /"id":"NetworkUnchanged","status":"fail","message":"spec\.networking\.cni: the cluster runs with \\"manifest\\", the file says \\"flannel\\"/);
  assert.equal(summaryOf(r.stdout)?.changed, 0);
  assert.equal((await onNode(NODE, "ls /etc/cni/net.d; md5sum /etc/kubernetes/manifests/*")).stdout, before);
});
