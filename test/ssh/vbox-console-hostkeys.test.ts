// Host keys read from a VM's serial console (the virtualbox driver's way) against a real OpenSSH
// server: known_hosts written from a console log that shows the server's own keys lets kubeprov
// connect; a console log showing other keys (the fixture's) makes the connection refused, and
// nothing new is recorded.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { clusterSchema, type Cluster } from "../../provisioner/spec/schema.js";
import { openTransport } from "../../provisioner/transport/pool.js";
import { HostError } from "../../provisioner/errors.js";
import { packageRoot } from "../../provisioner/paths.js";
import { hostKeysFromConsole } from "../../provisioner/drivers/virtualbox/cloudinit.js";
import { rewriteKnownHosts } from "../../provisioner/drivers/virtualbox/knownhosts.js";
import { startFleet, type SshFleet } from "../helpers/sshd.js";

const FIXTURE = join(packageRoot(), "test", "fixtures", "virtualbox", "console-with-host-keys.log");
let fleet: SshFleet;
let cluster: Cluster;

before(async () => {
  fleet = await startFleet(1, { keyTypes: ["ed25519", "ecdsa"], trust: false });
  cluster = clusterSchema.parse(fleet.clusterInput());
});
after(async () => {
  await fleet?.stop();
});

/** A console log as cloud-init writes it, with these public keys in the KEYS block. */
function consoleLog(keys: string[]): string {
  return ["[    6.2] cloud-init[520]: Generating public/private ed25519 key pair.", "-----BEGIN SSH HOST KEY KEYS-----", ...keys, "-----END SSH HOST KEY KEYS-----", "login: "].join("\r\n");
}

test("keys from the console that match the server: connected", async () => {
  const s = fleet.servers[0];
  writeFileSync(fleet.knownHostsFile, "");
  const keys = hostKeysFromConsole(consoleLog(Object.values(s.hostKeys).map((k) => k!.trim())))!;
  rewriteKnownHosts(fleet.knownHostsFile, [{ names: [`[127.0.0.1]:${s.port}`, s.name], keys }]);
  const t = await openTransport(cluster, cluster.spec.hosts[0]);
  assert.equal((await t.exec("echo ok")).stdout, "ok\n");
  await t.close();
});

test("keys from a console that are not the server's: refused as a changed host key, known_hosts untouched", async () => {
  const s = fleet.servers[0];
  writeFileSync(fleet.knownHostsFile, "");
  const keys = hostKeysFromConsole(readFileSync(FIXTURE, "latin1"))!;
  rewriteKnownHosts(fleet.knownHostsFile, [{ names: [`[127.0.0.1]:${s.port}`, s.name], keys }]);
  const before = readFileSync(fleet.knownHostsFile, "utf8");
  await assert.rejects(
    () => openTransport(cluster, cluster.spec.hosts[0], { acceptNewHostKeys: true }),
    (e: unknown) => e instanceof HostError && /REMOTE HOST KEY CHANGED for \[127\.0\.0\.1\]:\d+/.test(e.message),
  );
  assert.equal(readFileSync(fleet.knownHostsFile, "utf8"), before);
});
