// Control plane as systemd units (spec.controlPlane.mode: systemd): `up --no-kubernetes`, then
// `init -f` with the driver's cluster file changed to mode systemd. Same checks as the static-pod
// cluster where they apply, plus the units, a broken flag in a unit, and switching to static pods.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseDocument } from "yaml";
import { dockerCleanup, kubectl, kubeprov, onNode, removeTestCluster, summaryOf, waitFor } from "../helpers/cluster-e2e.js";

const NAME = "kpt-sd";
const NODE = `${NAME}-control-plane`;
const home = mkdtempSync(join(tmpdir(), "kpt-sd-"));
const kubeconfig = join(home, "admin.conf");
const systemdFile = join(home, "systemd.yaml");
const COMPONENTS = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"];

function withMode(mode: string, extra?: (doc: ReturnType<typeof parseDocument>) => void): string {
  const doc = parseDocument(readFileSync(join(home, "clusters", NAME, "cluster.yaml"), "utf8"));
  doc.setIn(["spec", "controlPlane", "mode"], mode);
  extra?.(doc);
  return doc.toString();
}

const readyz = async () => {
  const r = await kubectl(kubeconfig, ["get", "--raw", "/readyz"]);
  return r.code === 0 && r.stdout.trim() === "ok";
};

before(async () => {
  await dockerCleanup(NAME);
  const up = await kubeprov(home, ["up", "--name", NAME, "--no-kubernetes", "--no-kubeconfig"]);
  assert.equal(up.code, 0, up.stderr.slice(-3000));
  writeFileSync(systemdFile, withMode("systemd"));
  const init = await kubeprov(home, ["init", "-f", systemdFile, "-o", "json"]);
  assert.equal(init.code, 0, init.stderr.slice(-4000));
  process.stderr.write(`# init (systemd mode): ${(init.ms / 1000).toFixed(1)} s (tasks ${((summaryOf(init.stdout)?.durationMs ?? 0) / 1000).toFixed(1)} s)\n`);
  const kc = await kubeprov(home, ["kubeconfig", "-f", systemdFile]);
  assert.equal(kc.code, 0, kc.stderr);
  writeFileSync(kubeconfig, kc.stdout, { mode: 0o600 });
});

after(async () => {
  await removeTestCluster(home, NAME);
});

test("systemd mode: /readyz ok, the four units active and enabled, no control-plane static pods", async () => {
  assert.ok(await readyz());
  const units = await onNode(NODE, `systemctl is-active ${COMPONENTS.join(" ")}; systemctl is-enabled ${COMPONENTS.join(" ")}; ls /etc/kubernetes/manifests`);
  assert.deepEqual(units.stdout.trim().split("\n"), [...COMPONENTS.map(() => "active"), ...COMPONENTS.map(() => "enabled")]);
  const unit = await onNode(NODE, "cat /etc/systemd/system/kube-apiserver.service");
  assert.match(unit.stdout, /ExecStart=\/usr\/local\/bin\/kube-apiserver/);
  assert.match(unit.stdout, /--authorization-mode=Node,RBAC/);
  assert.match(unit.stdout, /--enable-admission-plugins=NodeRestriction/);
});

test("systemd mode: the node turns Ready and the leader leases are held", async () => {
  const ms = await waitFor(async () => {
    const r = await kubectl(kubeconfig, ["get", "node", NODE, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"]);
    return r.stdout.trim() === "True";
  }, 90_000);
  assert.notEqual(ms, -1, "node not Ready within 90 s");
  for (const lease of ["kube-controller-manager", "kube-scheduler"]) {
    let seen = "";
    const held = await waitFor(async () => {
      const r = await kubectl(kubeconfig, ["-n", "kube-system", "get", "lease", lease, "-o", "jsonpath={.spec.holderIdentity}"]);
      seen = `${r.stdout} ${r.stderr}`;
      return r.code === 0 && r.stdout.startsWith(NODE);
    }, 60_000);
    assert.notEqual(held, -1, `${lease}: ${seen}`);
  }
});

test("systemd mode: init again changes nothing", async () => {
  const r = await kubeprov(home, ["init", "-f", systemdFile, "-o", "json"]);
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const changed = r.stdout.split("\n").filter((l) => l.includes('"status":"changed"'));
  assert.equal(summaryOf(r.stdout)?.changed, 0, changed.join("\n"));
});

test("systemd mode: a broken apiserver flag fails init within 2 minutes with the unit's journal", async () => {
  const broken = join(home, "broken.yaml");
  writeFileSync(broken, withMode("systemd", (d) => d.setIn(["spec", "controlPlane", "extraArgs", "apiserver", "no-such-flag"], "x")));
  const r = await kubeprov(home, ["init", "-f", broken], 180_000);
  assert.equal(r.code, 1, r.stderr.slice(-2000));
  assert.ok(r.ms < 120_000, `took ${r.ms} ms`);
  assert.match(r.stderr, /kube-apiserver/);
  assert.match(r.stderr, /unknown flag: --no-such-flag/);
  const back = await kubeprov(home, ["init", "-f", systemdFile], 300_000);
  assert.equal(back.code, 0, back.stderr.slice(-2000));
  assert.ok(await readyz());
});

test("switching the same cluster to static pods removes the units and runs the manifests", async () => {
  const staticFile = join(home, "static.yaml");
  writeFileSync(staticFile, withMode("static-pods"));
  const r = await kubeprov(home, ["init", "-f", staticFile, "-o", "json"], 300_000);
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  const st = await onNode(NODE, `ls /etc/systemd/system/ | grep -c -E '^(etcd|kube-apiserver|kube-controller-manager|kube-scheduler)\\.service$'; ls /etc/kubernetes/manifests`);
  const [count, ...manifests] = st.stdout.trim().split("\n");
  assert.equal(count, "0");
  assert.deepEqual(manifests.sort(), COMPONENTS.map((c) => `${c}.yaml`));
  assert.ok(await readyz());
});
