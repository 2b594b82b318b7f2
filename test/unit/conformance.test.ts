// The conformance runner's pieces that need no cluster: its arguments, the DOCKER-USER rules it
// adds for the test networks, and reading the suite's JUnit file into counts and failed specs.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_SKIP, cidrContains, egressRules, imageSource, mirrorFlags, parseArgs, parseJunit, registryContainerName, registryPlan, report, summarize } from "../../scripts/conformance.js";

describe("conformance arguments", () => {
  test("defaults: a fresh one-node cluster, 4 processes, Serial and Disruptive specs skipped", () => {
    const o = parseArgs([], new Date("2026-12-04T10:00:00Z"));
    assert.equal(o.cluster, undefined);
    assert.equal(o.procs, 4);
    assert.equal(o.nodes, 1);
    assert.equal(o.controlPlanes, 1);
    assert.match(o.out, /conformance\/results\/2026-12-04T10-00-00-000Z$/);
    assert.ok(new RegExp(DEFAULT_SKIP).test("[sig-apps] Daemon set [Serial] should rollback"));
    assert.ok(!new RegExp(DEFAULT_SKIP).test("[sig-apps] Deployment should run [Conformance]"));
  });
  test("--control-planes 3 --nodes 4 is the HA layout; fewer nodes than control planes is raised", () => {
    const o = parseArgs(["--control-planes", "3", "--nodes", "4"]);
    assert.deepEqual([o.controlPlanes, o.nodes], [3, 4]);
    assert.equal(parseArgs(["--control-planes", "3"]).nodes, 3);
  });
  test("an existing cluster, focus and skip", () => {
    const o = parseArgs(["--cluster", "demo", "--focus", "sig-network", "--skip", "DNS"]);
    assert.deepEqual([o.cluster, o.focus, o.skip], ["demo", "sig-network", "DNS"]);
  });
  test("bad arguments are named", () => {
    assert.throws(() => parseArgs(["--procs", "0"]), /--procs "0": expected a whole number >= 1/);
    assert.throws(() => parseArgs(["--focus"]), /--focus needs a value/);
    assert.throws(() => parseArgs(["--focus", "("]), /--focus "\(": not a regular expression/);
    assert.throws(() => parseArgs(["--cluster", "a", "--nodes", "3"]), /cannot be used with --cluster/);
    assert.throws(() => parseArgs(["--cluster"]), /--cluster needs a value/);
    assert.throws(() => parseArgs(["extra"]), /unknown argument "extra"/);
  });
});

test("egress rules: nodes' networks rejected, pod subnets dropped, each once; none for a network already covered", () => {
  const base = egressRules(["10.213.0.0/16", "10.213.0.0/16"], ["10.244.0.0/16"]);
  assert.deepEqual(base, [
    { source: "10.213.0.0/16", target: "REJECT" },
    { source: "10.244.0.0/16", target: "DROP" },
  ]);
  // a cluster's own /24 inside 10.213.0.0/16 and the default pod subnet: nothing more to add
  assert.deepEqual(egressRules(["10.213.7.0/24"], ["10.244.0.0/16"], base), []);
  // a cluster file with its own pod subnet elsewhere gets its DROP
  assert.deepEqual(egressRules(["10.213.7.0/24"], ["10.32.0.0/12"], base), [{ source: "10.32.0.0/12", target: "DROP" }]);
  assert.ok(cidrContains("10.0.0.0/8", "10.244.1.0/24"));
  assert.ok(!cidrContains("10.244.0.0/16", "10.0.0.0/8"));
  assert.ok(!cidrContains("10.213.0.0/16", "10.214.0.0/24"));
  assert.ok(!cidrContains("fd00::/8", "fd00::/64"));
});

describe("the local registry", () => {
  test("an image's registry and its path there, by the docker reference rules", () => {
    assert.deepEqual(imageSource("registry.k8s.io/e2e-test-images/agnhost:2.66.1"), { registry: "registry.k8s.io", path: "e2e-test-images/agnhost:2.66.1" });
    assert.deepEqual(imageSource("registry.k8s.io/pause:3.10.2"), { registry: "registry.k8s.io", path: "pause:3.10.2" });
    assert.deepEqual(imageSource("reg.local:5000/x/y:1"), { registry: "reg.local:5000", path: "x/y:1" });
    assert.deepEqual(imageSource("localhost/a:1"), { registry: "localhost", path: "a:1" });
    assert.deepEqual(imageSource("busybox:1.36"), { registry: "docker.io", path: "library/busybox:1.36" });
    assert.deepEqual(imageSource("rancher/local-path-provisioner:v0.0.30"), { registry: "docker.io", path: "rancher/local-path-provisioner:v0.0.30" });
  });
  test("the plan: each image pushed once, each registry mirrored once, the up flags naming the registry's host", () => {
    const p = registryPlan([
      "registry.k8s.io/e2e-test-images/agnhost:2.66.1",
      "registry.k8s.io/e2e-test-images/agnhost:2.55",
      "registry.k8s.io/e2e-test-images/agnhost:2.66.1",
      "docker.io/library/nginx:1",
      "quay.io/x/y:2",
    ]);
    assert.deepEqual(p.registries, ["registry.k8s.io", "docker.io", "quay.io"]);
    assert.deepEqual(p.pushes.map((x) => x.path), ["e2e-test-images/agnhost:2.66.1", "e2e-test-images/agnhost:2.55", "library/nginx:1", "x/y:2"]);
    const host = `${registryContainerName("confreg")}:5000`;
    assert.equal(host, "confreg-registry:5000");
    assert.deepEqual(mirrorFlags(["registry.k8s.io"], host), ["--registry-mirror", "registry.k8s.io=http://confreg-registry:5000"]);
  });
  test("two registries' images with the same path cannot share the one mirror", () => {
    assert.throws(() => registryPlan(["registry.k8s.io/a/b:1", "quay.io/a/b:1"]), /registry\.k8s\.io\/a\/b:1 and quay\.io\/a\/b:1 would share one name/);
  });
});

const JUNIT = `<?xml version="1.0" encoding="UTF-8"?>
<testsuites tests="5" disabled="0" errors="0" failures="1" time="100">
  <testsuite name="Kubernetes e2e suite" package="/tmp" tests="5" disabled="0" skipped="1" errors="0" failures="1" time="100">
    <testcase name="[SynchronizedBeforeSuite]" classname="Kubernetes e2e suite" status="passed" time="3.1"></testcase>
    <testcase name="[It] [sig-network] DNS should provide DNS for the cluster [Conformance]" classname="Kubernetes e2e suite" status="passed" time="12.5">
      <system-err>log &amp; more</system-err>
    </testcase>
    <testcase name="[It] [sig-node] Probing container should *not* be restarted with a GRPC liveness probe [NodeConformance] [Conformance]" classname="Kubernetes e2e suite" status="failed" time="240.0">
      <failure message="Timed out after 240.000s.&#xA;Expected &lt;int&gt;: 1" type="failed">[FAILED] Timed out</failure>
    </testcase>
    <testcase name="[It] [sig-apps] Daemon set [Serial] should rollback [Conformance]" classname="Kubernetes e2e suite" status="skipped" time="0">
      <skipped message="skipped"></skipped>
    </testcase>
    <testcase name="[It] [sig-apps] Job should run a job to completion [Conformance]" classname="Kubernetes e2e suite" status="passed" time="20"/>
    <testcase name="[It] [sig-storage] CSI mock volume should not be counted" classname="Kubernetes e2e suite" status="skipped" time="0">
      <skipped message="skipped - filtered out"></skipped>
    </testcase>
  </testsuite>
</testsuites>`;

test("JUnit: passed, failed and skipped specs; the suite's own set-up nodes are not specs, filtered-out non-conformance specs not counted", () => {
  const specs = parseJunit(JUNIT);
  const s = summarize(specs);
  assert.deepEqual([s.passed, s.failed, s.skipped], [2, 1, 1]);
  assert.equal(s.failures[0].name, "[sig-node] Probing container should *not* be restarted with a GRPC liveness probe [NodeConformance] [Conformance]");
  assert.equal(s.failures[0].message, "Timed out after 240.000s. Expected <int>: 1");
  assert.equal(specs.find((x) => x.name.startsWith("[sig-network]"))?.seconds, 12.5);
});

test("JUnit: a failure whose message attribute ginkgo left empty is told by the element's text", () => {
  const xml = `<testsuites><testsuite><testcase name="[It] [sig-node] ImageVolume should succeed" status="failed" time="300.0"><failure message="" type="failed">[FAILED] Failed to await for the pod to be running: (ns/test-pod): Timed out after 300.000s.&#xA;Expected Pod to be in &lt;v1.PodPhase&gt;: Running&#xA;Got instead:&#xA;    &lt;*v1.Pod&gt;</failure></testcase></testsuite></testsuites>`;
  const [f] = summarize(parseJunit(xml)).failures;
  assert.equal(f.message, "Failed to await for the pod to be running: (ns/test-pod): Timed out after 300.000s. Expected Pod to be in <v1.PodPhase>: Running Got instead:");
});

test("report: the counts line, each failed spec, the JUnit file, and exit 1 on a failure", () => {
  const dir = mkdtempSync(join(tmpdir(), "kpt-conformance-"));
  const written: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  try {
    writeFileSync(join(dir, "junit_01.xml"), JUNIT);
    process.stdout.write = ((chunk: string) => (written.push(String(chunk)), true)) as typeof process.stdout.write;
    const code = report(dir);
    process.stdout.write = write;
    assert.equal(code, 1);
    const text = written.join("");
    assert.match(text, /^2 passed, 1 failed, 1 skipped$/m);
    assert.match(text, /FAILED: \[sig-node\] Probing container/);
    assert.match(text, new RegExp(`JUnit: ${join(dir, "junit_01.xml")}`));
    rmSync(join(dir, "junit_01.xml"));
    assert.throws(() => report(dir), /wrote no JUnit file/);
  } finally {
    process.stdout.write = write;
    rmSync(dir, { recursive: true, force: true });
  }
});
