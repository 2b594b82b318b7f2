// Host key verification against real sshd host keys: unknown, accepted and recorded, changed
// (refused, no retry), hashed and [host]:port entries, several key types, @revoked.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { clusterSchema, type Cluster } from "../../provisioner/spec/schema.js";
import { openTransport } from "../../provisioner/transport/pool.js";
import { connectHosts, closeHosts } from "../../provisioner/engine/hosts.js";
import { HostError, RuntimeFailure } from "../../provisioner/errors.js";
import { startFleet, startSshd, type SshFleet, type Sshd } from "../helpers/sshd.js";

let fleet: SshFleet;
let cluster: Cluster;

before(async () => {
  fleet = await startFleet(2, { keyTypes: ["ed25519", "ecdsa", "rsa"], trust: false });
  cluster = clusterSchema.parse(fleet.clusterInput());
});
after(async () => {
  await fleet?.stop();
});

const keyOf = (s: Sshd, t: "ed25519" | "ecdsa" | "rsa") => s.hostKeys[t]!.split(" ").slice(0, 2).join(" ");
const connections = (s: Sshd) => (s.log().match(/Connection from 127\.0\.0\.1/g) ?? []).length;

async function connectOk(c: Cluster, i = 0, opts = {}): Promise<void> {
  const t = await openTransport(c, c.spec.hosts[i], opts);
  assert.equal((await t.exec("echo ok")).stdout, "ok\n");
  await t.close();
}

test("unknown host: refused with how to accept, nothing recorded", async () => {
  writeFileSync(fleet.knownHostsFile, "");
  await assert.rejects(
    () => openTransport(cluster, cluster.spec.hosts[0]),
    (e: unknown) => {
      assert.ok(e instanceof HostError);
      assert.match(e.message, /^node1: unknown host key for \[127\.0\.0\.1\]:\d+ \(host node1, ssh-ed25519 SHA256:/);
      assert.match(e.message, /--accept-new-host-keys/);
      return true;
    },
  );
  assert.equal(readFileSync(fleet.knownHostsFile, "utf8"), "");
});

test("--accept-new-host-keys records the key (plain), and the next connection needs no flag", async () => {
  writeFileSync(fleet.knownHostsFile, "");
  await connectOk(cluster, 0, { acceptNewHostKeys: true });
  const s = fleet.servers[0];
  const text = readFileSync(fleet.knownHostsFile, "utf8");
  assert.equal(text, `[127.0.0.1]:${s.port} ${keyOf(s, "ed25519")}\n`);
  await connectOk(cluster, 0);
  // OpenSSH's own client accepts what we recorded.
  const r = spawnSync(
    "ssh",
    ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes", "-o", `UserKnownHostsFile=${fleet.knownHostsFile}`, "-o", "GlobalKnownHostsFile=/dev/null", "-i", fleet.clientKey, "-p", String(s.port), "root@127.0.0.1", "true"],
    { encoding: "utf8", timeout: 15_000 },
  );
  assert.equal(r.status, 0, r.stderr);
});

test("accepted keys can be recorded hashed; OpenSSH finds them with ssh-keygen -F", async () => {
  writeFileSync(fleet.knownHostsFile, "");
  await connectOk(cluster, 1, { acceptNewHostKeys: true, hashKnownHosts: true });
  const text = readFileSync(fleet.knownHostsFile, "utf8");
  assert.match(text, /^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-ed25519 /);
  assert.ok(!text.includes("127.0.0.1"));
  const f = spawnSync("ssh-keygen", ["-F", `[127.0.0.1]:${fleet.servers[1].port}`, "-f", fleet.knownHostsFile], { encoding: "utf8" });
  assert.equal(f.status, 0);
  await connectOk(cluster, 1);
});

test("hashed entries made by ssh-keygen -H, and [host]:port entries, are trusted", async () => {
  writeFileSync(fleet.knownHostsFile, fleet.knownHostsLines());
  assert.equal(spawnSync("ssh-keygen", ["-H", "-f", fleet.knownHostsFile]).status, 0);
  assert.ok(!readFileSync(fleet.knownHostsFile, "utf8").includes("127.0.0.1"));
  await connectOk(cluster, 0);
  await connectOk(cluster, 1);
});

test("several key types: a host known only by its RSA (or ECDSA) key connects with that key", async () => {
  const s = fleet.servers[0];
  writeFileSync(fleet.knownHostsFile, `[127.0.0.1]:${s.port} ${keyOf(s, "rsa")}\n`);
  await connectOk(cluster, 0);
  writeFileSync(fleet.knownHostsFile, `[127.0.0.1]:${s.port} ${keyOf(s, "ecdsa")}\n`);
  await connectOk(cluster, 0);
});

test("comma-separated host lists", async () => {
  const s = fleet.servers[0];
  writeFileSync(fleet.knownHostsFile, `other.example,[127.0.0.1]:${s.port},10.213.0.9 ${keyOf(s, "ed25519")}\n`);
  await connectOk(cluster, 0);
});

test("@revoked host key: refused", async () => {
  const s = fleet.servers[0];
  writeFileSync(fleet.knownHostsFile, `[127.0.0.1]:${s.port} ${keyOf(s, "ed25519")}\n@revoked * ${keyOf(s, "ed25519")}\n`);
  await assert.rejects(() => openTransport(cluster, cluster.spec.hosts[0], { acceptNewHostKeys: true }), /node1: host key ssh-ed25519 SHA256:\S+ of \[127\.0\.0\.1\]:\d+ is marked @revoked/);
});

test("a CHANGED host key is refused (even with --accept-new-host-keys), names the host, and is not retried", async () => {
  const old = fleet.servers[1];
  writeFileSync(fleet.knownHostsFile, fleet.knownHostsLines());
  const before = readFileSync(fleet.knownHostsFile, "utf8");
  // The same address and port, now served by a server with new host keys.
  await old.stop();
  const imposter = await startSshd({ name: "node2", authorizedKeys: fleet.clientPub, port: old.port, keyTypes: ["ed25519", "ecdsa", "rsa"] });
  fleet.servers[1] = imposter;
  const baseline = connections(imposter); // the helper's readiness probe
  const t0 = Date.now();
  await assert.rejects(
    () => openTransport(cluster, cluster.spec.hosts[1], { acceptNewHostKeys: true }),
    (e: unknown) => {
      assert.ok(e instanceof HostError);
      assert.match(e.message, /host key/);
      assert.match(e.message, /node2/);
      assert.match(e.message, /REMOTE HOST KEY CHANGED for \[127\.0\.0\.1\]:\d+ \(host node2\)/);
      return true;
    },
  );
  const ms = Date.now() - t0;
  assert.ok(ms < 3000, `refused in ${ms} ms`);
  // sshd logs one line per TCP connection: exactly one attempt was made.
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(connections(imposter) - baseline, 1, imposter.log());
  assert.equal(readFileSync(fleet.knownHostsFile, "utf8"), before, "known_hosts untouched");

  // Through connectHosts: one error naming the host, exit 1; the good host is closed again.
  await assert.rejects(
    () => connectHosts(cluster),
    (e: unknown) => e instanceof RuntimeFailure && /node2/.test(e.message) && /host key/i.test(e.details ?? ""),
  );
  const ok = await connectHosts(clusterSchema.parse(fleet.clusterInput({ hosts: [cluster.spec.hosts[0]] })));
  await closeHosts(ok);
});
