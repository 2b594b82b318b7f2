// The virtualbox driver against test/fixtures/vboxmanage-recording-standin, a stand-in for
// VBoxManage that records its argv and answers the driver's queries as VirtualBox 7 does
// (VirtualBox cannot run here). What is checked: the exact command sequence of create, a second
// `up`, stop (with and without the poweroff fallback), start, node delete and delete; the NoCloud
// seed ISO read back by blkid and libarchive; host keys taken from a serial console log into
// known_hosts, and a different key refused by the same known_hosts.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, copyFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../../provisioner/paths.js";
import { VirtualBoxDriver, vmFiles } from "../../provisioner/drivers/virtualbox/index.js";
import { hostKeysFromConsole, seedImage } from "../../provisioner/drivers/virtualbox/cloudinit.js";
import { parseMachineReadable, parseHostOnlyList, parseVmList, prefixLength } from "../../provisioner/drivers/virtualbox/commands.js";
import { clusterFiles } from "../../provisioner/drivers/localfiles.js";
import { getDriver } from "../../provisioner/drivers/index.js";
import { parseKnownHosts, verifyHostKey } from "../../provisioner/transport/knownhosts.js";
import { ConfigError } from "../../provisioner/errors.js";
import type { ClusterMachinesPlan } from "../../provisioner/drivers/driver.js";

const STANDIN = join(packageRoot(), "test", "fixtures", "vboxmanage-recording-standin");
const CONSOLE_FIXTURE = join(packageRoot(), "test", "fixtures", "virtualbox", "console-with-host-keys.log");
const CLUSTER = "vb";

let home: string;
let standin: string;
let consoles: string;
let ova: string;
const sshWaits: string[] = [];

/** The commands the stand-in received since the last call, and whether queries are kept. */
function takeCalls(opts: { queries?: boolean } = {}): string[][] {
  const file = join(standin, "calls.jsonl");
  const calls = existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean).map((l) => JSON.parse(l) as string[]) : [];
  rmSync(file, { force: true });
  const query = (c: string[]) => c[0] === "--version" || c[0] === "list" || c[0] === "showvminfo" || c[0] === "getextradata";
  return opts.queries ? calls : calls.filter((c) => !query(c));
}

function driver(extra: Partial<ConstructorParameters<typeof VirtualBoxDriver>[0]> = {}): VirtualBoxDriver {
  return new VirtualBoxDriver({
    vboxmanage: STANDIN,
    image: ova,
    pollMs: 10,
    bootTimeoutMs: 5000,
    waitForSsh: async (node) => {
      sshWaits.push(node);
    },
    ...extra,
  });
}

const plan: ClusterMachinesPlan = {
  cluster: CLUSTER,
  machines: [
    { node: "vb-control-plane", roles: ["control-plane"], cpus: 2, memory: 2 * 1024 ** 3 },
    { node: "vb-worker", roles: ["worker"] },
  ],
  reserveVirtualIP: false,
};

before(() => {
  home = mkdtempSync(join(tmpdir(), "kpt-vbox-"));
  standin = join(home, "standin");
  consoles = join(home, "consoles");
  mkdirSync(standin);
  mkdirSync(consoles);
  copyFileSync(CONSOLE_FIXTURE, join(consoles, "default.log"));
  ova = join(home, "debian-12-genericcloud-amd64.ova");
  writeFileSync(ova, "not a real appliance: the stand-in only checks that the file exists\n");
  process.env.KUBEPROV_HOME = join(home, "state");
  process.env.KUBEPROV_CACHE = join(home, "cache");
  process.env.VBOX_STANDIN_DIR = standin;
  process.env.VBOX_STANDIN_CONSOLE_DIR = consoles;
});
after(() => rmSync(home, { recursive: true, force: true }));

test("host keys from a serial console log: the last complete block, CRLF and all", () => {
  const log = readFileSync(CONSOLE_FIXTURE, "latin1");
  const keys = hostKeysFromConsole(log)!;
  assert.deepEqual(keys.map((k) => k.split(" ")[0]), ["ecdsa-sha2-nistp256", "ssh-ed25519", "ssh-rsa"]);
  assert.ok(keys.every((k) => !k.includes("\r") && k.split(" ").length === 2));
  // A block still being written is not used; an earlier complete one is.
  const cut = log.slice(0, log.indexOf("-----END SSH HOST KEY KEYS-----"));
  assert.equal(hostKeysFromConsole(cut), undefined);
  assert.deepEqual(hostKeysFromConsole(log + "\r\n-----BEGIN SSH HOST KEY KEYS-----\r\nssh-ed25519 AAAAnew"), keys);
});

test("the seed ISO: an iso9660 volume labelled cidata with user-data, meta-data and network-config", (t) => {
  const iso = join(home, "seed.iso");
  const publicKey = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDsZ0lE2sWkWbq0D4Rrn1lZbdA3XkQwKq1cJdM8x0F9v kubeprov-vb";
  writeFileSync(iso, seedImage({ cluster: "vb", node: "vb-worker", publicKey, address: "192.168.56.11", prefixLength: 24, natMac: "08:00:27:aa:bb:01", hostOnlyMac: "08:00:27:aa:bb:02" }));
  const blkid = spawnSync("blkid", ["-p", "-o", "export", iso], { encoding: "utf8" });
  if (blkid.error) t.diagnostic("blkid not installed: volume label not checked");
  else {
    assert.match(blkid.stdout, /^TYPE=iso9660$/m);
    assert.match(blkid.stdout, /^LABEL=cidata$/m);
  }
  const list = spawnSync("bsdtar", ["-tf", iso], { encoding: "utf8" });
  if (list.error) {
    t.skip("bsdtar (libarchive-tools) not installed: file names and contents not read back");
    return;
  }
  assert.deepEqual(list.stdout.split("\n").filter((l) => l && l !== ".").sort(), ["meta-data", "network-config", "user-data"]);
  const read = (name: string) => spawnSync("bsdtar", ["-xOf", iso, name], { encoding: "utf8" }).stdout;
  assert.match(read("user-data"), /^#cloud-config\n/);
  assert.ok(read("user-data").includes(publicKey));
  assert.match(read("meta-data"), /^local-hostname: vb-worker$/m);
  assert.match(read("network-config"), /macaddress: 08:00:27:aa:bb:02[\s\S]*- 192\.168\.56\.11\/24/);
});

test("parsers: list vms, showvminfo --machinereadable, list hostonlyifs", () => {
  assert.deepEqual(parseVmList('"a b" {0f8b1e4a-1111-2222-3333-444455556666}\n"c" {aa-bb}\n'), [
    { name: "a b", uuid: "0f8b1e4a-1111-2222-3333-444455556666" },
    { name: "c", uuid: "aa-bb" },
  ]);
  const info = parseMachineReadable('name="x"\ngroups="/kubeprov/vb,/other"\nVMState="running"\nmemory=2048\n"SATA-0-0"="/d.vdi"\n');
  assert.equal(info.get("groups"), "/kubeprov/vb,/other");
  assert.equal(info.get("memory"), "2048");
  assert.equal(info.get("SATA-0-0"), "/d.vdi");
  assert.deepEqual(parseHostOnlyList("Name:            vboxnet0\nGUID:  x\nIPAddress:       192.168.56.1\nNetworkMask:     255.255.255.0\n\nName: vboxnet1\nIPAddress: 192.168.57.1\nNetworkMask: 255.255.252.0\n"), [
    { name: "vboxnet0", ip: "192.168.56.1", netmask: "255.255.255.0" },
    { name: "vboxnet1", ip: "192.168.57.1", netmask: "255.255.252.0" },
  ]);
  assert.equal(prefixLength("255.255.252.0"), 22);
});

test("without an image: a usage error (exit 2) naming --vbox-image, before any VM is made", async () => {
  takeCalls();
  await assert.rejects(
    () => driver({ image: undefined }).provision(plan),
    (e: unknown) => e instanceof ConfigError && e.exitCode === 2 && /--vbox-image FILE\.ova/.test(e.message),
  );
  assert.deepEqual(takeCalls(), []);
});

test("provision: import, snapshot, host-only network, linked clones with seed and serial log, headless start", async () => {
  // Another host-only interface already holds 192.168.56.0/24: the cluster gets the next /24.
  spawnSync(STANDIN, ["hostonlyif", "create"]);
  spawnSync(STANDIN, ["hostonlyif", "ipconfig", "vboxnet0", "--ip", "192.168.56.1", "--netmask", "255.255.255.0"]);
  takeCalls();
  sshWaits.length = 0;
  const r = await driver().provision(plan);
  const dir = vmFiles(CLUSTER).dir;
  const cp = vmFiles(CLUSTER, "vb-control-plane");
  const calls = takeCalls();
  const modify = (c: string[]) => c[0] === "modifyvm" && c.includes("--cpus");
  // The MAC addresses are derived from cluster and node: read them from the calls, check their form.
  const macs = calls.filter(modify).map((c) => [c[c.indexOf("--macaddress1") + 1], c[c.indexOf("--macaddress2") + 1]]);
  for (const m of macs.flat()) assert.match(m, /^080027[0-9A-F]{6}$/);
  const nodeCalls = (node: string, role: string, address: string, [natMac, hostOnlyMac]: string[]) => {
    const f = vmFiles(CLUSTER, node);
    return [
      ["clonevm", "vb-kubeprov-base", "--snapshot", "kubeprov-base", "--options", "link", "--name", node, "--groups", "/kubeprov/vb", "--basefolder", dir, "--register"],
      [
        "modifyvm", node, "--cpus", "2", "--memory", "2048",
        "--nic1", "nat", "--macaddress1", natMac,
        "--nic2", "hostonly", "--hostonlyadapter2", "vboxnet1", "--macaddress2", hostOnlyMac,
        "--uart1", "0x3F8", "4", "--uartmode1", "file", f.consoleLog,
        "--description", `kubeprov cluster=vb node=${node} roles=${role} address=${address}`,
      ],
      ["storagectl", node, "--name", "kubeprov-seed", "--add", "ide"],
      ["storageattach", node, "--storagectl", "kubeprov-seed", "--port", "0", "--device", "0", "--type", "dvddrive", "--medium", f.seedIso],
      ["startvm", node, "--type", "headless"],
    ];
  };
  assert.deepEqual(calls, [
    ["import", ova, "--vsys", "0", "--vmname", "vb-kubeprov-base", "--group", "/kubeprov/vb", "--basefolder", dir],
    ["modifyvm", "vb-kubeprov-base", "--description", "kubeprov cluster=vb base"],
    ["snapshot", "vb-kubeprov-base", "take", "kubeprov-base"],
    ["hostonlyif", "create"],
    ["hostonlyif", "ipconfig", "vboxnet1", "--ip", "192.168.57.1", "--netmask", "255.255.255.0"],
    ["setextradata", "global", "kubeprov/vb/hostonlyif", "vboxnet1"],
    ...nodeCalls("vb-control-plane", "control-plane", "192.168.57.10", macs[0]),
    ...nodeCalls("vb-worker", "worker", "192.168.57.11", macs[1]),
  ]);
  assert.equal(new Set(macs.flat()).size, 4);
  assert.equal(r.created, 2);
  assert.equal(r.subnet, "192.168.57.0/24");
  assert.equal(r.interface, "hostonly0");
  assert.deepEqual(r.machines.map((m) => [m.node, m.address, m.state]), [
    ["vb-control-plane", "192.168.57.10", "running"],
    ["vb-worker", "192.168.57.11", "running"],
  ]);
  assert.deepEqual(sshWaits.sort(), ["vb-control-plane", "vb-worker"]);
  assert.equal(statSync(cp.seedIso).mode & 0o777, 0o600);
});

test("host keys recorded from the console log; another key for the same node is refused", () => {
  const entries = parseKnownHosts(readFileSync(clusterFiles(CLUSTER).knownHostsFile, "utf8"));
  const consoleKeys = hostKeysFromConsole(readFileSync(CONSOLE_FIXTURE, "latin1"))!;
  const blob = (k: string) => Buffer.from(k.split(" ")[1], "base64");
  for (const name of ["192.168.57.10", "vb-control-plane", "192.168.57.11", "vb-worker"])
    for (const k of consoleKeys) assert.equal(verifyHostKey(entries, name, 22, blob(k)).status, "trusted", `${name} ${k.split(" ")[0]}`);
  const keyDir = mkdtempSync(join(home, "key-"));
  spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", join(keyDir, "k")]);
  const other = readFileSync(join(keyDir, "k.pub"), "utf8");
  assert.equal(verifyHostKey(entries, "192.168.57.10", 22, blob(other)).status, "changed");
});

test("a second provision changes nothing", async () => {
  takeCalls();
  const r = await driver().provision(plan);
  assert.deepEqual(takeCalls(), []);
  assert.equal(r.created + r.started, 0);
});

test("stop: the ACPI power button, and poweroff only for a guest that ignores it", async () => {
  takeCalls();
  await driver().stop(CLUSTER);
  assert.deepEqual(takeCalls(), [
    ["controlvm", "vb-control-plane", "acpipowerbutton"],
    ["controlvm", "vb-worker", "acpipowerbutton"],
  ]);
  assert.deepEqual((await driver().list(CLUSTER)).map((m) => m.state), ["stopped", "stopped"]);

  await driver().start(CLUSTER);
  takeCalls();
  process.env.VBOX_STANDIN_IGNORE_ACPI = "1";
  try {
    await driver({ stopTimeoutMs: 200 }).stop(CLUSTER, "vb-worker");
  } finally {
    delete process.env.VBOX_STANDIN_IGNORE_ACPI;
  }
  assert.deepEqual(takeCalls(), [
    ["controlvm", "vb-worker", "acpipowerbutton"],
    ["controlvm", "vb-worker", "poweroff"],
  ]);
});

test("start: headless start of the stopped VMs, then SSH waited for", async () => {
  takeCalls();
  sshWaits.length = 0;
  await driver().start(CLUSTER);
  assert.deepEqual(takeCalls(), [["startvm", "vb-worker", "--type", "headless"]]);
  assert.deepEqual(sshWaits.sort(), ["vb-control-plane", "vb-worker"]);
});

test("deleteMachine: poweroff, unregistervm --delete, its seed, console log and known_hosts entries gone", async () => {
  takeCalls();
  await driver().deleteMachine(CLUSTER, "vb-worker");
  assert.deepEqual(takeCalls(), [
    ["controlvm", "vb-worker", "poweroff"],
    ["unregistervm", "vb-worker", "--delete"],
  ]);
  const w = vmFiles(CLUSTER, "vb-worker");
  assert.equal(existsSync(w.seedIso) || existsSync(w.consoleLog), false);
  const kh = readFileSync(clusterFiles(CLUSTER).knownHostsFile, "utf8");
  assert.doesNotMatch(kh, /vb-worker|192\.168\.57\.11/);
  assert.match(kh, /^vb-control-plane ssh-ed25519 /m);
});

test("delete: VMs, then the base, the host-only interface and its record, the local files; the driver from KUBEPROV_VBOXMANAGE", async () => {
  takeCalls();
  process.env.KUBEPROV_VBOXMANAGE = STANDIN;
  let removed: string[];
  try {
    removed = (await getDriver("virtualbox").delete(CLUSTER)).removed;
  } finally {
    delete process.env.KUBEPROV_VBOXMANAGE;
  }
  assert.deepEqual(takeCalls(), [
    ["controlvm", "vb-control-plane", "poweroff"],
    ["unregistervm", "vb-control-plane", "--delete"],
    ["unregistervm", "vb-kubeprov-base", "--delete"],
    ["hostonlyif", "remove", "vboxnet1"],
    ["setextradata", "global", "kubeprov/vb/hostonlyif"],
  ]);
  assert.deepEqual(removed, ["vm vb-control-plane", "vm vb-kubeprov-base", "host-only interface vboxnet1", `directory ${clusterFiles(CLUSTER).dir}`]);
  assert.equal(existsSync(clusterFiles(CLUSTER).dir), false);
  const state = JSON.parse(readFileSync(join(standin, "state.json"), "utf8"));
  assert.deepEqual(state.vms, []);
  assert.deepEqual(state.hostonlyifs.map((h: { name: string }) => h.name), ["vboxnet0"]);
  // Deleting again finds nothing and succeeds.
  assert.deepEqual((await driver().delete(CLUSTER)).removed, []);
});

test("a VM whose console shows no host keys: the node is named, nothing trusted; keys shown later are recorded by the next up", async () => {
  rmSync(join(consoles, "default.log"));
  const one = { ...plan, machines: [plan.machines[0]] };
  try {
    await assert.rejects(
      () => driver({ bootTimeoutMs: 300 }).provision(one),
      (e: unknown) => /^vb-control-plane \[boot\]: no SSH host keys on the serial console/.test((e as Error).message),
    );
    const kh = clusterFiles(CLUSTER).knownHostsFile;
    assert.equal(existsSync(kh) && readFileSync(kh, "utf8").trim() !== "", false);
    // cloud-init prints them at last; the VM is running already, so this up creates and starts nothing.
    copyFileSync(CONSOLE_FIXTURE, vmFiles(CLUSTER, "vb-control-plane").consoleLog);
    takeCalls();
    const r = await driver().provision(one);
    assert.deepEqual(takeCalls(), []);
    assert.equal(r.created + r.started, 0);
    assert.match(readFileSync(kh, "utf8"), /^192\.168\.5\d\.10 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAINI6OyWDudHJZmKmwOf5WrrB6RgRsfgA0fTGdTyyjWao$/m);
  } finally {
    copyFileSync(CONSOLE_FIXTURE, join(consoles, "default.log"));
    await driver().delete(CLUSTER);
  }
});
