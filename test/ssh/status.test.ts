// `kubeprov status` through the real CLI against real sshd hosts: 2 hosts, 20 hosts (timed),
// text and JSON output, an unreachable host reported (exit 1) without stopping the others.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { freePort, startFleet, type SshFleet } from "../helpers/sshd.js";
import { clusterSchema } from "../../provisioner/spec/schema.js";
import { collectStatus, systemProbe } from "../../provisioner/status/probes.js";

const BIN = resolve("bin/kubeprov.js");
let fleet: SshFleet;

before(async () => {
  fleet = await startFleet(20);
});
after(async () => {
  await fleet?.stop();
});

function kubeprov(args: string[], stdin?: string): Promise<{ code: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((res) => {
    const t0 = Date.now();
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d) => (stdout += d));
    p.stderr.on("data", (d) => (stderr += d));
    p.on("close", (code) => res({ code, stdout, stderr, ms: Date.now() - t0 }));
    p.stdin.end(stdin ?? "");
  });
}

const osRelease = Object.fromEntries(
  readFileSync("/etc/os-release", "utf8")
    .split("\n")
    .filter((l) => l.includes("="))
    .map((l) => [l.slice(0, l.indexOf("=")), l.slice(l.indexOf("=") + 1).replace(/^"|"$/g, "")]),
);

interface JsonHost {
  name: string;
  reachable: boolean;
  error?: string;
  os: { id: string; versionId: string; prettyName: string };
  kernel: string;
  cpus: number;
  memoryMB: number;
  installed: { binaries: Record<string, { path: string; version?: string }>; services: Record<string, string> };
}

function checkHost(h: JsonHost): void {
  assert.equal(h.reachable, true, h.error);
  // Every sshd here runs on this machine, so each host must report what this machine is.
  assert.deepEqual(h.os, { id: osRelease.ID, versionId: osRelease.VERSION_ID, prettyName: osRelease.PRETTY_NAME });
  assert.equal(h.kernel, readFileSync("/proc/sys/kernel/osrelease", "utf8").trim());
  assert.equal(h.cpus, cpus().length);
  assert.equal(h.memoryMB, Math.round(Number(/MemTotal:\s+(\d+)/.exec(readFileSync("/proc/meminfo", "utf8"))![1]) / 1024));
  assert.ok(Math.abs(h.memoryMB - totalmem() / 1048576) < 2);
  assert.equal(typeof h.installed.binaries, "object");
}

test("status on 2 hosts: one JSON document, every field from the hosts themselves", async () => {
  const file = join(fleet.dir, "two.yaml");
  writeFileSync(file, fleet.clusterYaml({ hosts: (fleet.clusterInput().spec as { hosts: unknown[] }).hosts.slice(0, 2) as never }));
  const r = await kubeprov(["status", "-f", file, "-o", "json"]);
  console.log(`# status on 2 hosts: ${r.ms} ms (whole CLI process)`);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { hosts: JsonHost[] };
  assert.deepEqual(
    doc.hosts.map((h) => h.name),
    ["node1", "node2"],
  );
  doc.hosts.forEach(checkHost);
  // What is installed on this machine is reported with real versions (containerd from Debian, if present).
  const ctr = doc.hosts[0].installed.binaries.containerd;
  if (ctr) assert.match(ctr.version ?? "", /^\d+\.\d+\.\d+/);
});

test("status on 20 hosts, text table, from stdin (-f -)", async () => {
  const r = await kubeprov(["status", "-f", "-"], fleet.clusterYaml());
  console.log(`# status on 20 hosts: ${r.ms} ms (whole CLI process)`);
  assert.equal(r.code, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.match(lines[0], /^HOST\s+STATE\s+ADDRESS\s+REACHABLE\s+OS\s+KERNEL\s+CPUS\s+MEMORY\s+INSTALLED$/);
  // The table, a blank line, the cluster's state: no Kubernetes on these hosts yet.
  assert.equal(lines.length, 23);
  assert.equal(lines[22], "cluster kpt-ssh: NotInstalled");
  for (let i = 1; i <= 20; i++) {
    assert.match(lines[i], new RegExp(`^node${i}\\s+NotInstalled\\s+127\\.0\\.0\\.1:${fleet.servers[i - 1].port}\\s+yes\\s+${osRelease.PRETTY_NAME.replace(/[()]/g, "\\$&")}`));
  }
  const j = await kubeprov(["status", "-f", "-", "-o", "json"], fleet.clusterYaml());
  console.log(`# status on 20 hosts, -o json: ${j.ms} ms`);
  const doc = JSON.parse(j.stdout) as { hosts: JsonHost[] };
  assert.equal(doc.hosts.length, 20);
  doc.hosts.forEach(checkHost);
});

test("timing in-process (no CLI start-up): 2 and 20 hosts, all probes and the system probe alone", async () => {
  // Every "host" here is this one machine: 20 hosts share its CPUs, so this is a pessimistic
  // figure for real, separate machines (where the time is about the slowest host's).
  const all = (fleet.clusterInput().spec as { hosts: unknown[] }).hosts;
  for (const n of [2, 20]) {
    const c = clusterSchema.parse(fleet.clusterInput({ hosts: all.slice(0, n) as never }));
    let t0 = Date.now();
    const full = await collectStatus(c);
    const fullMs = Date.now() - t0;
    t0 = Date.now();
    const sys = await collectStatus(c, { probes: [systemProbe] });
    const sysMs = Date.now() - t0;
    console.log(`# status in-process on ${n} hosts: ${fullMs} ms with every probe, ${sysMs} ms with the system probe only`);
    assert.ok(full.every((h) => h.reachable && !h.probeErrors && h.installed));
    assert.ok(sys.every((h) => h.reachable && h.os && !h.installed));
  }
});

test("an unreachable host is reported with its error, the others still answer, exit 1", async () => {
  const closed = await freePort();
  const input = fleet.clusterInput();
  const hosts = (input.spec as { hosts: Array<Record<string, unknown>> }).hosts.slice(0, 2);
  hosts.push({ name: "down1", address: "127.0.0.1", roles: ["worker"], ssh: { port: closed } });
  const file = join(fleet.dir, "down.yaml");
  writeFileSync(file, fleet.clusterYaml({ hosts }));
  const r = await kubeprov(["status", "-f", file, "-o", "json"]);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /1 of 3 hosts unreachable: down1/);
  const doc = JSON.parse(r.stdout) as { hosts: JsonHost[] };
  assert.equal(doc.hosts.length, 3);
  checkHost(doc.hosts[0]);
  checkHost(doc.hosts[1]);
  assert.equal(doc.hosts[2].reachable, false);
  assert.match(doc.hosts[2].error ?? "", /cannot connect to root@127\.0\.0\.1:\d+: ECONNREFUSED/);
  const t = await kubeprov(["status", "-f", file]);
  assert.equal(t.code, 1);
  assert.match(t.stdout, /^down1\s+Unreachable\s+127\.0\.0\.1:\d+\s+NO\s/m, t.stderr);
  assert.match(t.stdout, /^down1: cannot connect to root@127\.0\.0\.1:\d+: ECONNREFUSED/m);
});

test("unknown hosts: status refuses them unless --accept-new-host-keys", async () => {
  const input = fleet.clusterInput({ ssh: { knownHostsFile: join(fleet.dir, "status_known_hosts") } });
  (input.spec as { hosts: unknown[] }).hosts.splice(1);
  const file = join(fleet.dir, "unknown.yaml");
  writeFileSync(file, JSON.stringify(input));
  const r = await kubeprov(["status", "-f", file, "-o", "json"]);
  assert.equal(r.code, 1);
  assert.match(JSON.parse(r.stdout).hosts[0].error, /unknown host key for \[127\.0\.0\.1\]:\d+ .*--accept-new-host-keys/);
  const ok = await kubeprov(["status", "-f", file, "-o", "json", "--accept-new-host-keys"]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.match(readFileSync(join(fleet.dir, "status_known_hosts"), "utf8"), /^\[127\.0\.0\.1\]:\d+ ssh-ed25519 /);
});

test("no target: usage error, exit 2", async () => {
  const r = await kubeprov(["status"]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /-f\/--file|--name/);
});
