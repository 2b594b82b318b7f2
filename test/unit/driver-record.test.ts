// The driver a cluster was made with, recorded by `up` and resolved by delete, stop, start, status
// and node: resolveClusterDriver directly, and through the CLI (a disagreeing --driver is exit 2
// before anything is touched).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { driverRecordFile, readDriverRecord, resolveClusterDriver, writeDriverRecord } from "../../provisioner/drivers/record.js";
import { clusterFiles } from "../../provisioner/drivers/localfiles.js";
import { UsageError } from "../../provisioner/errors.js";
import { CLI_ARGS } from "../helpers/kubeprov-cli.js";
import { planUp } from "../../provisioner/cli/commands/up.js";

let home: string;
before(() => {
  home = mkdtempSync(join(tmpdir(), "kpt-record-"));
  process.env.KUBEPROV_HOME = home;
});
after(() => rmSync(home, { recursive: true, force: true }));

const usage = (re: RegExp) => (e: unknown) => e instanceof UsageError && e.exitCode === 2 && re.test(e.message);

test("nothing recorded: --driver if given, else docker", () => {
  assert.deepEqual(resolveClusterDriver("none"), { name: "docker", from: "default" });
  assert.deepEqual(resolveClusterDriver("none", "virtualbox"), { name: "virtualbox", from: "flag" });
  assert.throws(() => resolveClusterDriver("none", "qemu"), usage(/--driver "qemu": one of docker, virtualbox, none, ssh/));
});

test("recorded at up: used without --driver; the same --driver is fine; another one is exit 2 naming both", () => {
  writeDriverRecord("vm1", { driver: "virtualbox", vboxImage: "/images/debian.ova" });
  assert.equal(statSync(driverRecordFile("vm1")).mode & 0o777, 0o600);
  assert.deepEqual(JSON.parse(readFileSync(driverRecordFile("vm1"), "utf8")), { driver: "virtualbox", vboxImage: "/images/debian.ova" });
  assert.deepEqual(resolveClusterDriver("vm1"), { name: "virtualbox", record: { driver: "virtualbox", vboxImage: "/images/debian.ova" }, from: "recorded" });
  assert.equal(resolveClusterDriver("vm1", "virtualbox").name, "virtualbox");
  assert.throws(() => resolveClusterDriver("vm1", "docker"), usage(/^--driver docker: cluster vm1 was made with the virtualbox driver \(recorded in .*driver\.json\)/));
});

test("clusters from before the record: the driver named in the cluster file's header", () => {
  const f = clusterFiles("old");
  mkdirSync(f.dir, { recursive: true });
  writeFileSync(f.clusterFile, "# Written by `kubeprov up --name old` (driver docker, network 10.213.0.0/24).\napiVersion: x\n");
  assert.deepEqual(readDriverRecord("old"), { driver: "docker", source: f.clusterFile });
  assert.throws(() => resolveClusterDriver("old", "virtualbox"), usage(/cluster old was made with the docker driver/));
});

test("up: --vbox-image belongs to the virtualbox driver", () => {
  const o = { name: "img", nodes: 1, controlPlanes: 1, kubernetesVersion: "v1.34.4", kubernetes: false, vboxImage: "/i.ova" };
  assert.throws(() => planUp({ ...o, driver: "docker" }), usage(/--vbox-image is for the virtualbox driver \(this cluster's driver is docker\)/));
  assert.equal(planUp({ ...o, driver: "virtualbox" }).machines.machines.length, 1);
});

test("a damaged record is a usage error naming the file", () => {
  mkdirSync(clusterFiles("bad").dir, { recursive: true });
  writeFileSync(driverRecordFile("bad"), '{"driver": "qemu"}');
  assert.throws(() => resolveClusterDriver("bad"), usage(/driver\.json: driver "qemu" is not one of/));
});

test("CLI: up, stop, start, delete, node list and node delete refuse a --driver the record contradicts (exit 2), and touch nothing", async () => {
  writeDriverRecord("vm2", { driver: "virtualbox" });
  for (const args of [
    ["stop", "--name", "vm2", "--driver", "docker"],
    ["start", "--name", "vm2", "--driver", "docker"],
    ["delete", "--name", "vm2", "--driver", "docker"],
    ["node", "list", "--name", "vm2", "--driver", "docker"],
    ["node", "delete", "vm2-worker", "--name", "vm2", "--driver", "docker"],
    ["up", "--name", "vm2", "--driver", "docker", "--no-kubernetes"],
  ]) {
    const r = await execa(process.execPath, [...CLI_ARGS, ...args], { reject: false, env: { KUBEPROV_HOME: home } });
    assert.equal(r.exitCode, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, /--driver docker: cluster vm2 was made with the virtualbox driver/, args.join(" "));
  }
  assert.deepEqual(readDriverRecord("vm2")?.driver, "virtualbox");
  // Without --driver the recorded driver is used: here VBoxManage is missing, which is said as such.
  const r = await execa(process.execPath, [...CLI_ARGS, "stop", "--name", "vm2"], { reject: false, env: { KUBEPROV_HOME: home, KUBEPROV_VBOXMANAGE: join(home, "no-such-vboxmanage") } });
  assert.equal(r.exitCode, 1);
  assert.match(r.stderr, /VirtualBox is not installed/);
});
