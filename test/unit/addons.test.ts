// The optional add-ons (spec.addons: storage, metrics-server): their place in the cluster file,
// the objects rendered from templates/addons/, the images nodes import for them, and the CLI's
// `addons` command up to the point where it would reach a host.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { parse as parseYaml } from "yaml";
import { join } from "node:path";
import { parseClusterText } from "../../provisioner/spec/load.js";
import { ConfigError } from "../../provisioner/errors.js";
import { metricsServerObjects, storageObjects, METRICS_SERVER_PORT } from "../../provisioner/bootstrap/manifests.js";
import { objectPath, type KubeObject } from "../../provisioner/bootstrap/api.js";
import { imageCatalog, imageRef, imagesForNode } from "../../provisioner/images/catalog.js";
import { addonObjects, findAddon, OPTIONAL_ADDONS } from "../../provisioner/tasks/optional-addons.js";
import { recordedAddons, renderAddonsTable, setAddonEnabled } from "../../provisioner/cli/commands/addons.js";
import { renderDriverClusterFile } from "../../provisioner/drivers/clusterfile.js";
import { run } from "../../provisioner/cli/main.js";

const HEAD = `apiVersion: kubeprov/v1alpha1
kind: Cluster
metadata: {name: demo}
spec:
  hosts:
    - {name: cp1, address: 10.213.5.2, roles: [control-plane, worker]}
`;

const cluster = (extra = "") => parseClusterText(HEAD + extra, "cluster.yaml");

type Container = { name: string; image: string; args?: string[]; env?: { name: string; value: string }[]; ports?: { name: string; containerPort: number }[] };
type PodSpec = { containers: Container[]; serviceAccountName?: string };
const byKind = (objs: KubeObject[], kind: string) => objs.filter((o) => o.kind === kind);
const one = (objs: KubeObject[], kind: string) => {
  const found = byKind(objs, kind);
  assert.equal(found.length, 1, `one ${kind}`);
  return found[0] as KubeObject & Record<string, any>;
};
const podSpec = (d: KubeObject) => (d as any).spec.template.spec as PodSpec;

describe("spec.addons", () => {
  test("defaults as minikube: storage on under /opt/local-path-provisioner, metrics-server off", () => {
    const c = cluster();
    assert.deepEqual(c.spec.addons, { storage: { enabled: true, hostPath: "/opt/local-path-provisioner" }, metricsServer: { enabled: false } });
  });

  test("set in the file", () => {
    const c = cluster("  addons: {storage: {enabled: false}, metricsServer: {enabled: true}}\n");
    assert.equal(c.spec.addons.storage.enabled, false);
    assert.equal(c.spec.addons.metricsServer.enabled, true);
  });

  for (const [bad, why] of [
    ["data/volumes", "relative"],
    ["/", "the root"],
    ["/opt/../etc", "a .. part"],
    ["/opt/x y", "a space"],
    ["/opt/x/", "a trailing slash"],
  ] as const) {
    test(`hostPath ${JSON.stringify(bad)} (${why}) is refused, naming the field`, () => {
      assert.throws(
        () => cluster(`  addons: {storage: {hostPath: ${JSON.stringify(bad)}}}\n`),
        (e: unknown) => e instanceof ConfigError && /cluster\.yaml:\d+:\d+ spec\.addons\.storage\.hostPath: ".*" must be an absolute path/.test(e.message + (e as any).problems?.join("\n")),
      );
    });
  }

  test("an unknown add-on is an error naming it", () => {
    assert.throws(
      () => cluster("  addons: {dashboard: {enabled: true}}\n"),
      (e: unknown) => e instanceof ConfigError && /spec\.addons\.dashboard/.test(String((e as any).problems?.join("\n") ?? e.message)),
    );
  });
});

describe("storage objects", () => {
  const objs = storageObjects(cluster("  addons: {storage: {hostPath: /srv/volumes}}\n"), { image: "example/lpp:v1", apiServer: "https://10.213.5.2:6443" });

  test("a default StorageClass named standard, bound when the first pod is scheduled, served by the Deployment's provisioner", () => {
    const sc = one(objs, "StorageClass");
    assert.equal(sc.metadata.name, "standard");
    assert.equal(sc.metadata.annotations?.["storageclass.kubernetes.io/is-default-class"], "true");
    assert.equal(sc.volumeBindingMode, "WaitForFirstConsumer");
    assert.equal(sc.reclaimPolicy, "Delete");
    const args = podSpec(one(objs, "Deployment")).containers[0].args ?? [];
    assert.ok(args.includes(`--provisioner-name=${sc.provisioner}`), args.join(" "));
  });

  test("its ConfigMap keeps volumes under hostPath, and the helper pods run the provisioner's image (it has sh)", () => {
    const cm = one(objs, "ConfigMap");
    assert.deepEqual(JSON.parse(cm.data["config.json"]), { nodePathMap: [{ node: "DEFAULT_PATH_FOR_NON_LISTED_NODES", paths: ["/srv/volumes"] }] });
    assert.match(cm.data.setup, /^#!\/bin\/sh\n[\s\S]*mkdir -m 0777 -p "\$VOL_DIR"/);
    assert.match(cm.data.teardown, /rm -rf "\$VOL_DIR"/);
    const helper = parseYaml(cm.data["helperPod.yaml"]) as { spec: PodSpec };
    assert.equal(helper.spec.containers[0].image, "example/lpp:v1");
    const d = podSpec(one(objs, "Deployment"));
    assert.equal(d.containers[0].image, "example/lpp:v1");
    assert.ok(d.containers[0].args?.includes("--configmap-name=local-path-config"));
    assert.ok(d.containers[0].args?.includes(`--service-account-name=${d.serviceAccountName}`));
  });

  test("the provisioner talks to the API server's own address, and everything namespaced is in kube-system", () => {
    const env = podSpec(one(objs, "Deployment")).containers[0].env ?? [];
    assert.deepEqual(
      env.filter((e) => e.name.startsWith("KUBERNETES_SERVICE_")),
      [
        { name: "KUBERNETES_SERVICE_HOST", value: "10.213.5.2" },
        { name: "KUBERNETES_SERVICE_PORT", value: "6443" },
      ],
    );
    for (const o of objs) {
      const namespaced = !["StorageClass", "ClusterRole", "ClusterRoleBinding"].includes(o.kind);
      assert.equal(o.metadata.namespace, namespaced ? "kube-system" : undefined, `${o.kind}/${o.metadata.name}`);
    }
  });
});

describe("metrics-server objects", () => {
  const objs = metricsServerObjects({ image: "example/ms:v0" });

  test("the APIService v1beta1.metrics.k8s.io points at the metrics-server Service, whose port reaches the container", () => {
    const api = one(objs, "APIService");
    assert.equal(api.metadata.name, "v1beta1.metrics.k8s.io");
    assert.deepEqual(api.spec.service, { name: "metrics-server", namespace: "kube-system", port: 443 });
    assert.equal(api.spec.group, "metrics.k8s.io");
    assert.equal(api.spec.version, "v1beta1");
    const svc = one(objs, "Service");
    assert.equal(svc.metadata.name, "metrics-server");
    const d = one(objs, "Deployment");
    const c = podSpec(d).containers[0];
    assert.deepEqual(c.ports?.map((p) => [p.name, p.containerPort]), [["https", METRICS_SERVER_PORT]]);
    assert.equal(svc.spec.ports[0].targetPort, "https");
    for (const [k, v] of Object.entries(svc.spec.selector as Record<string, string>)) assert.equal(d.spec.template.metadata.labels[k], v);
  });

  test("it scrapes kubelets by InternalIP without verifying their self-signed certificates, every 15 s", () => {
    const args = podSpec(one(objs, "Deployment")).containers[0].args ?? [];
    for (const a of ["--kubelet-insecure-tls", "--kubelet-preferred-address-types=InternalIP", "--metric-resolution=15s", `--secure-port=${METRICS_SERVER_PORT}`]) assert.ok(args.includes(a), `${a} in ${args.join(" ")}`);
  });

  test("its RBAC: reads nodes, pods and nodes/metrics; delegates authentication and authorization", () => {
    const roleRefs = byKind(objs, "ClusterRoleBinding").map((b) => (b as any).roleRef.name).sort();
    assert.deepEqual(roleRefs, ["system:auth-delegator", "system:metrics-server"]);
    assert.equal((one(objs, "RoleBinding") as any).roleRef.name, "extension-apiserver-authentication-reader");
    const reader = byKind(objs, "ClusterRole").find((r) => r.metadata.name === "system:metrics-server") as any;
    assert.ok(reader.rules.some((r: any) => r.resources.includes("nodes/metrics") && r.verbs.includes("get")));
  });
});

describe("add-on catalog and images", () => {
  test("the API paths of the new kinds", () => {
    assert.equal(objectPath("storage.k8s.io/v1", "StorageClass", "standard"), "/apis/storage.k8s.io/v1/storageclasses/standard");
    assert.equal(objectPath("apiregistration.k8s.io/v1", "APIService", "v1beta1.metrics.k8s.io"), "/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io");
  });

  test("every object of every add-on has a kind kubeprov can address (apply and delete)", () => {
    const c = cluster();
    for (const a of OPTIONAL_ADDONS) for (const o of addonObjects(a, c, { forRemoval: true })) assert.doesNotThrow(() => objectPath(o.apiVersion, o.kind, o.metadata.name, o.metadata.namespace), `${a.name}: ${o.kind}`);
  });

  test("images: built only from a bundle that has the binaries; imported only for the add-ons enabled", () => {
    const v = { kubernetesVersion: "v1.37.2", etcdVersion: "v3.7.0", corednsVersion: "v1.14.6", localPathProvisionerVersion: "v0.0.30", metricsServerVersion: "v0.8.0" };
    const recipes = imageCatalog(v);
    const lpp = recipes.find((r) => r.name === "local-path-provisioner")!;
    assert.equal(lpp.base, "debian", "its helper pods need sh, mkdir and rm");
    assert.equal(lpp.ref, "docker.io/rancher/local-path-provisioner:v0.0.30");
    assert.equal(recipes.find((r) => r.name === "metrics-server")!.ref, imageRef("metrics-server", v));
    assert.ok(!imageCatalog({ ...v, localPathProvisionerVersion: undefined, metricsServerVersion: undefined }).some((r) => r.name === "metrics-server" || r.name === "local-path-provisioner"));
    const node = { controlPlane: false, mode: "static-pods" as const };
    assert.ok(imagesForNode({ ...node, storage: true }).includes("local-path-provisioner"));
    assert.ok(!imagesForNode({ ...node, storage: false }).includes("local-path-provisioner"));
    assert.ok(imagesForNode({ ...node, metricsServer: true }).includes("metrics-server"));
    assert.ok(!imagesForNode(node).includes("metrics-server"));
  });

  test("names users type map to the file's fields", () => {
    assert.equal(findAddon("metrics-server")?.key, "metricsServer");
    assert.equal(findAddon("storage")?.key, "storage");
    assert.equal(findAddon("dashboard"), undefined);
  });
});

describe("the recorded cluster file", () => {
  const reach = { kind: "ssh" as const, host: "10.213.0.2", port: 22, user: "root", identityFile: "/k/id", knownHostsFile: "/k/kh" };
  const machines = [{ node: "demo-control-plane", machine: "demo-control-plane", address: "10.213.0.2", roles: ["control-plane", "worker"] as ("control-plane" | "worker")[], state: "running" as const, reach }];
  const base = { name: "demo", driver: "docker", kubernetesVersion: "v1.37.2", machines, identityFile: "/k/id", knownHostsFile: "/k/kh", artifactsDir: "/b" };

  test("enable/disable edit spec.addons only, keeping the header comment and every other line", () => {
    const text = renderDriverClusterFile(base);
    const on = setAddonEnabled(text, findAddon("metrics-server")!, true);
    assert.ok(on.startsWith("# Written by `kubeprov up --name demo`"), on);
    assert.equal(parseClusterText(on, "x.yaml").spec.addons.metricsServer.enabled, true);
    const before = text.split("\n").filter(Boolean);
    const after = on.split("\n").filter(Boolean);
    assert.deepEqual(after.filter((l) => !before.includes(l)), ["  addons:", "    metricsServer:", "      enabled: true"]);
    const off = setAddonEnabled(setAddonEnabled(on, findAddon("storage")!, false), findAddon("metrics-server")!, false);
    assert.deepEqual(recordedAddons(off), { metricsServer: { enabled: false }, storage: { enabled: false } });
  });

  test("`up` writes the file anew with the add-ons recorded before", () => {
    const recorded = recordedAddons(setAddonEnabled(renderDriverClusterFile(base), findAddon("storage")!, false));
    const again = parseClusterText(renderDriverClusterFile({ ...base, addons: recorded }), "x.yaml");
    assert.equal(again.spec.addons.storage.enabled, false);
    assert.equal(recordedAddons(renderDriverClusterFile(base)), undefined);
  });

  test("the list table", () => {
    const t = renderAddonsTable([
      { name: "storage", enabled: true, state: "Running", detail: "9 objects, ready" },
      { name: "metrics-server", enabled: false, state: "Absent", detail: "no objects in the cluster" },
    ]);
    assert.equal(
      t,
      "NAME            FILE      CLUSTER  DETAIL\n" + "storage         enabled   Running  9 objects, ready\n" + "metrics-server  disabled  Absent   no objects in the cluster\n",
    );
  });
});

describe("kubeprov addons (usage errors, exit 2, nothing touched)", () => {
  const capture = async (args: string[]) => {
    let stderr = "";
    const err = process.stderr.write.bind(process.stderr);
    const out = process.stdout.write.bind(process.stdout);
    process.stderr.write = ((c: string | Uint8Array) => ((stderr += c.toString()), true)) as typeof process.stderr.write;
    process.stdout.write = ((c: string | Uint8Array) => ((stderr += c.toString()), true)) as typeof process.stdout.write;
    try {
      return { code: await run(args), stderr };
    } finally {
      process.stderr.write = err;
      process.stdout.write = out;
    }
  };
  const home = mkdtempSync(join(tmpdir(), "kpt-addons-unit-"));
  const saved = process.env.KUBEPROV_HOME;

  test("an unknown add-on names the ones there are; -f is refused with what to do instead; no cluster of that name", async () => {
    process.env.KUBEPROV_HOME = home;
    try {
      const unknown = await capture(["addons", "enable", "dashboard", "--name", "demo"]);
      assert.equal(unknown.code, 2);
      assert.match(unknown.stderr, /unknown add-on "dashboard": the add-ons are storage, metrics-server/);
      const file = await capture(["addons", "disable", "storage", "-f", "/nonexistent/cluster.yaml"]);
      assert.equal(file.code, 2);
      assert.match(file.stderr, /set spec\.addons\.storage\.enabled: false in it and run `kubeprov apply -f \/nonexistent\/cluster\.yaml`/);
      const none = await capture(["addons", "enable", "metrics-server", "--name", "nosuch"]);
      assert.equal(none.code, 2);
      assert.match(none.stderr, /no cluster named nosuch/);
      // The file of an existing cluster stays untouched on a usage error.
      mkdirSync(join(home, "clusters", "demo"), { recursive: true });
      const f = join(home, "clusters", "demo", "cluster.yaml");
      writeFileSync(f, HEAD);
      const bad = await capture(["addons", "enable", "nope", "--name", "demo"]);
      assert.equal(bad.code, 2);
      assert.equal(readFileSync(f, "utf8"), HEAD);
    } finally {
      if (saved === undefined) delete process.env.KUBEPROV_HOME;
      else process.env.KUBEPROV_HOME = saved;
      rmSync(home, { recursive: true, force: true });
    }
  });
});
