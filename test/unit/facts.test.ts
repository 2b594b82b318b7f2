// Facts: parseFacts on texts shaped like real hosts' output, and the facts task run for real on
// this machine, compared with what Node itself reads from the kernel.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import os from "node:os";
import { parseFacts, goArch, describeFacts, factsTask, FACTS_SCRIPT } from "../../provisioner/tasks/facts.js";
import { runTasks } from "../../provisioner/engine/runner.js";
import { createRunContext } from "../../provisioner/engine/context.js";
import { MemoryReporter } from "../../provisioner/events.js";
import { clusterFor, makeTmpHosts, type TmpTransport } from "../helpers/tmp-transport.js";

const debianNode = `os.PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
os.VERSION_ID="12"
os.ID=debian
kernel=6.1.0-18-amd64
machine=x86_64
cpus=8
memtotal_kb=16318412
hostname=node1
container.dockerenv=1
cgroupfs=tmpfs
pid1=systemd
pkg=apt-get
`;

const rocky = `os.ID="rocky"
os.ID_LIKE="rhel centos fedora"
os.VERSION_ID="9.3"
os.PRETTY_NAME="Rocky Linux 9.3 (Blue Onyx)"
kernel=5.14.0-362.8.1.el9_3.aarch64
machine=aarch64
cpus=4
memtotal_kb=7864320
hostname=rocky-1.example
cgroupfs=cgroup2fs
pid1=systemd
pkg=dnf
`;

test("parseFacts: a Debian node container (docker, cgroup v1, systemd)", () => {
  assert.deepEqual(parseFacts(debianNode), {
    os: { id: "debian", versionId: "12", prettyName: "Debian GNU/Linux 12 (bookworm)", idLike: [] },
    kernel: "6.1.0-18-amd64",
    arch: "amd64",
    machine: "x86_64",
    cpus: 8,
    memoryMB: 15935,
    hostname: "node1",
    container: true,
    cgroupVersion: 1,
    systemd: true,
    packageManager: "apt",
  });
  assert.equal(
    describeFacts(parseFacts(debianNode)),
    "Debian GNU/Linux 12 (bookworm), kernel 6.1.0-18-amd64, amd64, 8 CPUs, 15935 MB, cgroup v1, systemd, container",
  );
});

test("parseFacts: a RHEL-like arm64 VM (cgroup v2, dnf, quoted values, ID_LIKE list)", () => {
  const f = parseFacts(rocky);
  assert.deepEqual(f.os, { id: "rocky", versionId: "9.3", prettyName: "Rocky Linux 9.3 (Blue Onyx)", idLike: ["rhel", "centos", "fedora"] });
  assert.equal(f.arch, "arm64");
  assert.equal(f.cgroupVersion, 2);
  assert.equal(f.packageManager, "dnf");
  assert.equal(f.container, false);
  assert.equal(f.memoryMB, 7680);
  assert.equal(f.clusterCa, undefined, "no cluster CA reported: a fresh host");
  assert.equal(parseFacts(`${rocky}\npki.ca=1\n`).clusterCa, true);
});

test("parseFacts: container detected from systemd's marker or PID 1's environment; odd values", () => {
  assert.equal(parseFacts("kernel=6\nmachine=x86_64\ncontainer.systemd=podman\n").container, true);
  assert.equal(parseFacts("kernel=6\nmachine=x86_64\ncontainer.environ=lxc\n").container, true);
  const bare = parseFacts("kernel=6\nmachine=riscv64\ncpus=\nmemtotal_kb=x\npid1=init\n");
  assert.deepEqual([bare.os.id, bare.arch, bare.cpus, bare.memoryMB, bare.systemd, bare.packageManager], ["linux", "riscv64", 1, 0, false, "unknown"]);
  assert.equal(parseFacts(`os.PRETTY_NAME="Say \\"hi\\" \\$HOME"\nkernel=6\nmachine=x86_64\n`).os.prettyName, 'Say "hi" $HOME');
  assert.throws(() => parseFacts("hostname=x\n"), /did not report its kernel and architecture/);
  assert.equal(goArch("armv7l"), "arm");
  assert.equal(goArch("ppc64le"), "ppc64le");
});

test("the facts task on this machine: one command, status ok, host.facts matches what the kernel says", async () => {
  const made = await makeTmpHosts(2);
  try {
    const reporter = new MemoryReporter();
    // A dry run too: gathering facts changes nothing, so it runs there as well.
    const ctx = createRunContext({ cluster: clusterFor(made.hosts), hosts: made.hosts, reporter, dryRun: true });
    const s = await runTasks([factsTask], ctx);
    assert.deepEqual([s.unchanged, s.changed, s.failed], [2, 0, 0]);
    for (const h of made.hosts) {
      const t = h.transport as TmpTransport;
      assert.deepEqual(t.commands, [FACTS_SCRIPT], "facts must take exactly one remote command");
      const f = h.facts!;
      assert.ok(f, "host.facts not set");
      assert.equal(f.kernel, os.release());
      assert.equal(f.hostname, os.hostname());
      assert.equal(f.arch, { x64: "amd64", arm64: "arm64" }[process.arch as string] ?? process.arch);
      assert.equal(f.cpus, os.availableParallelism());
      assert.equal(f.memoryMB, Math.floor(os.totalmem() / 1024 / 1024));
      const osRelease = readFileSync("/etc/os-release", "utf8");
      assert.equal(f.os.id, /^ID=(.*)$/m.exec(osRelease)![1].replace(/"/g, ""));
      assert.equal(f.container, existsSync("/.dockerenv") || existsSync("/run/systemd/container"));
      assert.equal(f.systemd, readFileSync("/proc/1/comm", "utf8").trim() === "systemd");
      assert.equal(f.packageManager, "apt");
    }
    assert.equal(s.results[0].status, "ok");
    assert.match(s.results[0].reason!, new RegExp(`kernel ${os.release().replace(/[.]/g, "\\.")}`));
  } finally {
    await made.cleanup();
  }
});

test("the facts script reads os-release without a final newline and values holding '='; unreadable files give empty values", async () => {
  const made = await makeTmpHosts(1);
  try {
    const { writeFileSync } = await import("node:fs");
    const { join } = await import("node:path");
    const osr = join(made.dirs[0], "os-release");
    writeFileSync(osr, 'NAME="Alpine"\nID=alpine\nVERSION_ID=3.20.1\nPRETTY_NAME="Alpine = Linux v3.20"');
    const script = FACTS_SCRIPT.replaceAll("/etc/os-release", osr).replaceAll("/proc/1/comm", join(made.dirs[0], "missing"));
    const out = (await made.hosts[0].transport.exec(script)).stdout;
    const f = parseFacts(out);
    assert.deepEqual(f.os, { id: "alpine", versionId: "3.20.1", prettyName: "Alpine = Linux v3.20", idLike: [] });
    assert.equal(f.systemd, false);
    assert.match(out, /^pid1=$/m);
    assert.equal(f.hostname, os.hostname());
  } finally {
    await made.cleanup();
  }
});
