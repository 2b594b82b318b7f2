// The optional add-ons on one `up` (a single node, shared by every case): storage is on by default
// (a PersistentVolumeClaim without a class binds to the default StorageClass "standard", a pod
// writes a file, a replacement pod reads it back), `addons enable metrics-server` makes `kubectl
// top` answer, `addons list` shows the file's choice and the cluster's state, and `addons disable`
// removes every object the add-on made (a second disable and a re-run of `up` change nothing).
// Prints how long each add-on took to be ready.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { DEFAULT_KUBERNETES_VERSION } from "../../provisioner/constants.js";
import { dockerCleanup, KUBECTL, kubectl, kubeprov, onNode, removeTestCluster, summaryOf, waitFor } from "../helpers/cluster-e2e.js";

const NAME = "kpt-addons";
const NODE = `${NAME}-control-plane`;
const home = mkdtempSync(join(tmpdir(), "kpt-addons-"));
const kubeconfig = join(home, "admin.conf");
// An image every node holds that has a shell: kube-proxy's (built on a Debian root).
const SHELL_IMAGE = `registry.k8s.io/kube-proxy:${DEFAULT_KUBERNETES_VERSION}`;

async function apply(objects: unknown[]): Promise<void> {
  const r = await execa(KUBECTL, ["--kubeconfig", kubeconfig, "apply", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }), reject: false });
  assert.equal(r.exitCode, 0, String(r.stderr));
}

const shellPod = (name: string, script: string) => ({
  apiVersion: "v1",
  kind: "Pod",
  metadata: { name, namespace: "default" },
  spec: {
    restartPolicy: "Never",
    terminationGracePeriodSeconds: 0,
    containers: [{ name: "sh", image: SHELL_IMAGE, imagePullPolicy: "Never", command: ["sh", "-c", script], volumeMounts: [{ name: "data", mountPath: "/data" }] }],
    volumes: [{ name: "data", persistentVolumeClaim: { claimName: "data" } }],
  },
});

type ListRow = { name: string; enabled: boolean; state: string; detail: string };
async function addonsList(): Promise<ListRow[]> {
  const r = await kubeprov(home, ["addons", "list", "--name", NAME, "-o", "json"]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { addons: ListRow[] }).addons;
}
const rowOf = (rows: ListRow[], name: string) => rows.find((r) => r.name === name)!;

/** Waits for the pod to finish and returns its log. */
async function finished(name: string, limitMs = 120_000): Promise<{ phase: string; log: string }> {
  let phase = "";
  const ms = await waitFor(async () => {
    phase = (await kubectl(kubeconfig, ["get", "pod", name, "-o", "jsonpath={.status.phase}"])).stdout;
    return phase === "Succeeded" || phase === "Failed";
  }, limitMs);
  assert.notEqual(ms, -1, `pod ${name} did not finish (phase ${phase})`);
  return { phase, log: (await kubectl(kubeconfig, ["logs", name])).stdout };
}

let upDone = 0;

before(async () => {
  await dockerCleanup(NAME);
  const up = await kubeprov(home, ["up", "--name", NAME, "--no-kubeconfig", "-o", "json"]);
  assert.equal(up.code, 0, up.stdout.split("\n").filter((l) => l.includes('"failed"')).join("\n") + up.stderr.slice(-3000));
  upDone = Date.now();
  process.stderr.write(`# up (1 node, storage on by default): ${(up.ms / 1000).toFixed(1)} s\n`);
  // What storage adds to up: its image's import on the node, and its objects.
  for (const l of up.stdout.split("\n").filter((x) => x.startsWith("{"))) {
    const e = JSON.parse(l) as { type: string; task?: string; status?: string; durationMs?: number };
    if (e.type === "task" && (e.task === "prepare/images-addons" || e.task === "addons/storage")) process.stderr.write(`#   ${e.task}: ${e.status} in ${((e.durationMs ?? 0) / 1000).toFixed(1)} s\n`);
  }
  writeFileSync(kubeconfig, (await kubeprov(home, ["kubeconfig", "--name", NAME])).stdout, { mode: 0o600 });
});

after(async () => {
  await removeTestCluster(home, NAME);
});

test("storage by default: a claim without a class binds to standard, and a replacement pod reads what the first wrote", async () => {
  const running = await waitFor(async () => rowOf(await addonsList(), "storage").state === "Running", 120_000, 1000);
  assert.notEqual(running, -1, `storage not Running: ${JSON.stringify(rowOf(await addonsList(), "storage"))}`);
  process.stderr.write(`# storage Running ${((Date.now() - upDone) / 1000).toFixed(1)} s after up returned\n`);
  const sc = await kubectl(kubeconfig, ["get", "storageclass", "-o", "jsonpath={range .items[*]}{.metadata.name} {.metadata.annotations.storageclass\\.kubernetes\\.io/is-default-class}{\"\\n\"}{end}"]);
  assert.equal(sc.stdout.trim(), "standard true", sc.stderr);

  const t0 = Date.now();
  await apply([
    { apiVersion: "v1", kind: "PersistentVolumeClaim", metadata: { name: "data", namespace: "default" }, spec: { accessModes: ["ReadWriteOnce"], resources: { requests: { storage: "64Mi" } } } },
    shellPod("writer", "echo kept-across-pods > /data/hello && cat /data/hello"),
  ]);
  const w = await finished("writer");
  assert.equal(w.phase, "Succeeded", w.log);
  process.stderr.write(`# claim bound and the writer pod done in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  const pvc = await kubectl(kubeconfig, ["get", "pvc", "data", "-o", "jsonpath={.status.phase} {.spec.storageClassName} {.spec.volumeName}"]);
  const [phase, cls, pv] = pvc.stdout.split(" ");
  assert.deepEqual([phase, cls], ["Bound", "standard"], pvc.stdout);
  // The volume is a directory under the add-on's host path on the node.
  const onDisk = await onNode(NODE, `cat /opt/local-path-provisioner/${pv}_default_data/hello`);
  assert.equal(onDisk.stdout.trim(), "kept-across-pods", onDisk.stderr);

  assert.equal((await kubectl(kubeconfig, ["delete", "pod", "writer", "--wait=true"])).code, 0);
  await apply([shellPod("reader", "cat /data/hello")]);
  const r = await finished("reader");
  assert.equal(r.phase, "Succeeded");
  assert.equal(r.log.trim(), "kept-across-pods");

  // Deleting the claim deletes its volume and the directory (reclaim policy Delete, a helper pod).
  assert.equal((await kubectl(kubeconfig, ["delete", "pod", "reader", "--wait=true"])).code, 0);
  assert.equal((await kubectl(kubeconfig, ["delete", "pvc", "data", "--wait=true"])).code, 0);
  const gone = await waitFor(async () => (await kubectl(kubeconfig, ["get", "pv", pv])).code !== 0 && (await onNode(NODE, `test -e /opt/local-path-provisioner/${pv}_default_data`)).code !== 0, 90_000, 1000);
  assert.notEqual(gone, -1, `volume ${pv} or its directory still there after its claim was deleted`);
});

test("addons enable metrics-server: recorded in the cluster file, and `kubectl top nodes` and `top pods -A` answer", async () => {
  assert.equal(rowOf(await addonsList(), "metrics-server").state, "Absent");
  const enable = await kubeprov(home, ["addons", "enable", "metrics-server", "--name", NAME, "-o", "json"]);
  assert.equal(enable.code, 0, enable.stdout.split("\n").filter((l) => l.includes('"failed"')).join("\n") + enable.stderr.slice(-3000));
  const t0 = Date.now();
  process.stderr.write(`# addons enable metrics-server: ${(enable.ms / 1000).toFixed(1)} s, ${summaryOf(enable.stdout)?.changed} changed\n`);
  assert.match(readFileSync(join(home, "clusters", NAME, "cluster.yaml"), "utf8"), /\n  addons:\n    metricsServer:\n      enabled: true\n/);
  let top = "";
  const ms = await waitFor(async () => {
    const r = await kubectl(kubeconfig, ["top", "nodes", "--no-headers"]);
    top = r.stdout + r.stderr;
    return r.code === 0 && new RegExp(`^${NODE}\\s+\\d+m\\s+\\d+%\\s+\\d+Mi\\s+\\d+%`, "m").test(r.stdout);
  }, 240_000, 2000);
  assert.notEqual(ms, -1, `kubectl top nodes never answered: ${top}`);
  process.stderr.write(`# kubectl top nodes answered ${((Date.now() - t0) / 1000).toFixed(1)} s after enable returned\n`);
  const pods = await waitFor(async () => {
    const r = await kubectl(kubeconfig, ["top", "pods", "-A", "--no-headers"]);
    top = r.stdout + r.stderr;
    return r.code === 0 && /^kube-system\s+kube-apiserver-\S+\s+\d+m\s+\d+Mi/m.test(r.stdout);
  }, 120_000, 2000);
  assert.notEqual(pods, -1, `kubectl top pods -A never listed the API server: ${top}`);
});

test("addons list: the file's choice and the cluster's state of each add-on, as a table too", async () => {
  const rows = await addonsList();
  assert.deepEqual(
    rows.map((r) => [r.name, r.enabled, r.state]),
    [
      ["storage", true, "Running"],
      ["metrics-server", true, "Running"],
    ],
    JSON.stringify(rows),
  );
  const table = await kubeprov(home, ["addons", "list", "--name", NAME]);
  assert.equal(table.code, 0, table.stderr);
  assert.match(table.stdout, /^NAME\s+FILE\s+CLUSTER\s+DETAIL\n/);
  assert.match(table.stdout, /^metrics-server\s+enabled\s+Running\s/m);
});

test("addons disable removes every object the add-on made; a second disable and `up` again change nothing", async () => {
  const off = await kubeprov(home, ["addons", "disable", "metrics-server", "--name", NAME, "-o", "json"]);
  assert.equal(off.code, 0, off.stderr.slice(-3000));
  assert.ok((summaryOf(off.stdout)?.changed ?? 0) >= 1, off.stdout.slice(-2000));
  for (const what of [["apiservice", "v1beta1.metrics.k8s.io"], ["-n", "kube-system", "deployment", "metrics-server"], ["-n", "kube-system", "service", "metrics-server"], ["clusterrole", "system:metrics-server"]]) {
    const r = await kubectl(kubeconfig, ["get", ...what]);
    assert.notEqual(r.code, 0, `${what.join(" ")} still there`);
    assert.match(r.stderr, /NotFound/);
  }
  const podsGone = await waitFor(async () => (await kubectl(kubeconfig, ["get", "pods", "-n", "kube-system", "-l", "k8s-app=metrics-server", "-o", "name"])).stdout.trim() === "", 60_000, 1000);
  assert.notEqual(podsGone, -1, "metrics-server pods left behind");
  const top = await kubectl(kubeconfig, ["top", "nodes"]);
  assert.notEqual(top.code, 0, "kubectl top still answers");

  const again = await kubeprov(home, ["addons", "disable", "metrics-server", "--name", NAME, "-o", "json"]);
  assert.equal(again.code, 0, again.stderr.slice(-3000));
  assert.equal(summaryOf(again.stdout)?.changed, 0, again.stdout.split("\n").filter((l) => l.includes('"status":"changed"')).join("\n"));
  // `up` writes the cluster file anew: the recorded choice survives it, so it removes nothing and adds nothing.
  const up = await kubeprov(home, ["up", "--name", NAME, "--no-kubeconfig", "-o", "json"]);
  assert.equal(up.code, 0, up.stderr.slice(-3000));
  assert.equal(summaryOf(up.stdout)?.changed, 0, up.stdout.split("\n").filter((l) => l.includes('"status":"changed"')).join("\n"));

  const storageOff = await kubeprov(home, ["addons", "disable", "storage", "--name", NAME, "-o", "json"]);
  assert.equal(storageOff.code, 0, storageOff.stderr.slice(-3000));
  assert.equal((await kubectl(kubeconfig, ["get", "storageclass", "-o", "name"])).stdout.trim(), "");
  assert.deepEqual(
    (await addonsList()).map((r) => [r.name, r.enabled, r.state]),
    [
      ["storage", false, "Absent"],
      ["metrics-server", false, "Absent"],
    ],
  );
});
