// The cgroups a deleted node leaves on this machine, removed on the real cgroup filesystem: a
// made-up cluster's node roots with pod cgroups under them, one of them holding a live process.
// Only empty cgroups go; the busy one (and its parents) stay until its process is gone.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { cgroupHierarchies, removeNodeCgroups } from "../../provisioner/drivers/docker/cgroups.js";
import { KUBELET_CGROUP_PARENT } from "../../provisioner/constants.js";

const CLUSTER = `kpt-unit-cg${process.pid}`;

test("removeNodeCgroups removes a node's empty cgroups, then the cluster's, never a busy one", async () => {
  const hierarchies = cgroupHierarchies();
  assert.ok(hierarchies.length > 0, "this machine has cgroup hierarchies under /sys/fs/cgroup");
  const dir = (h: string, ...parts: string[]) => join(h, KUBELET_CGROUP_PARENT, CLUSTER, ...parts);
  const busyHierarchy = hierarchies.find((h) => /pids|memory/.test(h)) ?? hierarchies[0];
  const sleeper = spawn("sleep", ["60"], { stdio: "ignore" });
  try {
    for (const h of hierarchies) {
      mkdirSync(dir(h, "n1", "kubepods", "pod-a"), { recursive: true });
      mkdirSync(dir(h, "n2", "kubepods", "pod-b"), { recursive: true });
    }
    writeFileSync(join(dir(busyHierarchy, "n2", "kubepods", "pod-b"), "cgroup.procs"), String(sleeper.pid));

    // One node: its tree goes from every hierarchy; the cluster directory stays (n2 is in it).
    assert.ok(removeNodeCgroups(CLUSTER, "n1") >= 3 * hierarchies.length);
    for (const h of hierarchies) {
      assert.equal(existsSync(dir(h, "n1")), false, `${dir(h, "n1")} removed`);
      assert.equal(existsSync(dir(h, "n2", "kubepods", "pod-b")), true);
    }
    // The whole cluster: everything but the cgroup with a process and its parents.
    removeNodeCgroups(CLUSTER);
    for (const h of hierarchies) {
      assert.equal(existsSync(dir(h)), h === busyHierarchy, `${dir(h)} ${h === busyHierarchy ? "kept: a process is in it" : "removed"}`);
    }
    assert.equal(existsSync(dir(busyHierarchy, "n2", "kubepods", "pod-b")), true);
  } finally {
    sleeper.kill("SIGKILL");
    await new Promise((r) => sleeper.once("exit", r));
    // Once the process is gone its cgroup can go too.
    removeNodeCgroups(CLUSTER);
  }
  for (const h of hierarchies) assert.equal(existsSync(dir(h)), false, `${dir(h)} removed once empty`);
});

test("cgroupHierarchies lists real hierarchies only (no cpu,cpuacct-style aliases)", () => {
  for (const h of cgroupHierarchies()) assert.ok(existsSync(join(h, "cgroup.procs")), h);
  assert.deepEqual(cgroupHierarchies("/nonexistent-cgroup-root"), []);
});
