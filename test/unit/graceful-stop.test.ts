// `kubeprov stop`'s graceful part: the host script (run with the local /bin/sh against fake
// systemctl and crictl commands) and the lease release (against a fake API).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { heldByOneOf, leaseReleasePatch, microTime, releaseLeases, stopLeadersScript } from "../../provisioner/lifecycle/graceful-stop.js";
import type { ApiResponse, KubeApi } from "../../provisioner/bootstrap/api.js";

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "kpt-stop-"));
  // Fakes that log their arguments; crictl lists one running container per component.
  const fake = (name: string, body: string) => {
    writeFileSync(join(dir, name), `#!/bin/sh\necho "${name} $*" >> ${dir}/calls\n${body}\n`);
    chmodSync(join(dir, name), 0o755);
  };
  fake("systemctl", "exit 0");
  writeFileSync(join(dir, "admin.conf"), "");
  fake("hostname", "echo node-a");
  fake("crictl", `case "$*" in *"ps "*kube-scheduler*) echo id-sched;; *"ps "*kube-controller-manager*) echo id-kcm;; esac`);
});
after(() => rmSync(dir, { recursive: true, force: true }));

function run(script: string) {
  writeFileSync(join(dir, "calls"), "");
  const r = spawnSync("/bin/sh", ["-c", script], { encoding: "utf8", env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
  return { ...r, calls: readFileSync(join(dir, "calls"), "utf8").trim().split("\n").sort() };
}

test("stop-leaders.sh, static pods: the kubelet stopped first, then each leader container with the grace period", () => {
  const r = run(stopLeadersScript("static-pods", 7, join(dir, "crictl"), join(dir, "admin.conf")));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^hostname=node-a$/m);
  assert.match(r.stdout, /^stopped$/m);
  assert.ok(r.calls.includes("systemctl stop kubelet.service"));
  assert.ok(r.calls.includes("crictl stop --timeout 7 id-sched"));
  assert.ok(r.calls.includes("crictl stop --timeout 7 id-kcm"));
  const order = readFileSync(join(dir, "calls"), "utf8").split("\n");
  assert.equal(order[0], "hostname ");
  assert.equal(order[1], "systemctl stop kubelet.service");
});

test("stop-leaders.sh, systemd mode: the kubelet, then the two units; no crictl", () => {
  const r = run(stopLeadersScript("systemd", 5, join(dir, "crictl"), join(dir, "admin.conf")));
  assert.equal(r.status, 0, r.stderr);
  assert.ok(r.calls.includes("systemctl stop kube-scheduler.service kube-controller-manager.service"), r.calls.join("\n"));
  assert.ok(!r.calls.some((c) => c.startsWith("crictl")));
});

test("stop-leaders.sh: a host without Kubernetes (no crictl, no admin kubeconfig) is not an error", () => {
  const r = run(stopLeadersScript("static-pods", 5, join(dir, "no-such-crictl"), join(dir, "no-such-admin.conf")));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^stopped$/m);
  // No admin kubeconfig: no host name, so kubeprov does not try to release leases there.
  assert.doesNotMatch(r.stdout, /hostname=/);
});

test("lease release: client-go's release record, conditional on the resourceVersion read", () => {
  assert.equal(microTime(new Date("2026-12-04T14:08:34.245Z")), "2026-12-04T14:08:34.245000Z");
  assert.deepEqual(leaseReleasePatch({ metadata: { name: "kube-scheduler", resourceVersion: "42" } }, new Date("2026-12-04T14:08:34.245Z")), {
    metadata: { resourceVersion: "42" },
    spec: { holderIdentity: "", leaseDurationSeconds: 1, renewTime: "2026-12-04T14:08:34.245000Z", acquireTime: "2026-12-04T14:08:34.245000Z" },
  });
  assert.equal(heldByOneOf("node-a_1b2c", ["node-a"]), true);
  assert.equal(heldByOneOf("node-ab_1b2c", ["node-a"]), false);
  assert.equal(heldByOneOf("", ["node-a"]), false);
  assert.equal(heldByOneOf(undefined, ["node-a"]), false);
});

test("releaseLeases: only leases held by a stopped host's process; a conflict leaves the lease alone", async () => {
  const leases: Record<string, { metadata: { name: string; resourceVersion: string }; spec: { holderIdentity?: string } }> = {
    "kube-scheduler": { metadata: { name: "kube-scheduler", resourceVersion: "1" }, spec: { holderIdentity: "" } },
    "kube-controller-manager": { metadata: { name: "kube-controller-manager", resourceVersion: "2" }, spec: { holderIdentity: "node-a_uuid" } },
  };
  const patches: Array<[string, unknown]> = [];
  let status = 200;
  const api = {
    hostName: "node-a",
    via: "direct",
    get: async (path: string) => leases[path.split("/").pop()!],
    mergePatch: async (path: string, patch: unknown): Promise<ApiResponse> => {
      patches.push([path, patch]);
      return { status, text: "" };
    },
  } as unknown as KubeApi;
  assert.deepEqual(await releaseLeases(api, ["node-a"]), ["kube-controller-manager"]);
  assert.equal(patches.length, 1);
  assert.equal(patches[0][0], "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager");
  assert.deepEqual(await releaseLeases(api, ["node-b"]), []);
  status = 409;
  assert.deepEqual(await releaseLeases(api, ["node-a"]), []);
});
