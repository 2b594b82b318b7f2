// Bastion (jump host): one real sshd as the bastion, others reached only through its forwarded
// channels; host keys of both checked; one bastion connection shared by the hosts behind it.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { clusterSchema } from "../../provisioner/spec/schema.js";
import { openTransport } from "../../provisioner/transport/pool.js";
import { connectHosts, closeHosts } from "../../provisioner/engine/hosts.js";
import { HostError } from "../../provisioner/errors.js";
import { startFleet, startSshd, type SshFleet, type Sshd } from "../helpers/sshd.js";

let fleet: SshFleet;
let bastion: Sshd;

before(async () => {
  fleet = await startFleet(2);
  // debug1 makes sshd log every forwarded (direct-tcpip) channel it opens.
  bastion = await startSshd({ name: "bastion", authorizedKeys: fleet.clientPub, extraConfig: "LogLevel DEBUG1" });
});
after(async () => {
  await bastion?.stop();
  await fleet?.stop();
});

const bastionLine = () => `[127.0.0.1]:${bastion.port} ${bastion.hostKeys.ed25519!.split(" ").slice(0, 2).join(" ")}\n`;
const forwards = () => (bastion.log().match(/server_input_channel_open: confirm direct-tcpip/g) ?? []).length;
const logins = (s: Sshd) => (s.log().match(/Accepted publickey/g) ?? []).length;

test("hosts behind a bastion: reached through its forwarded channels, one bastion login for all", async () => {
  writeFileSync(fleet.knownHostsFile, fleet.knownHostsLines() + bastionLine());
  const cluster = clusterSchema.parse(fleet.clusterInput({ ssh: { bastion: `root@127.0.0.1:${bastion.port}` } }));
  const f0 = forwards();
  const l0 = logins(bastion);
  const hosts = await connectHosts(cluster);
  try {
    assert.equal(hosts.length, 2);
    for (const h of hosts) assert.equal((await h.transport.exec("echo via-bastion")).stdout, "via-bastion\n");
    await hosts[0].transport.writeFile(`${fleet.dir}/through-bastion.txt`, "data\n", { mode: 0o600 });
    assert.equal((await hosts[1].transport.readFile(`${fleet.dir}/through-bastion.txt`))?.toString(), "data\n");
    assert.equal(forwards() - f0, 2, bastion.log());
    assert.equal(logins(bastion) - l0, 1, "one bastion connection shared by both hosts");
  } finally {
    await closeHosts(hosts);
  }
});

test("a per-host bastion override, written as host:port", async () => {
  writeFileSync(fleet.knownHostsFile, fleet.knownHostsLines() + bastionLine());
  const input = fleet.clusterInput();
  const hosts = (input.spec as { hosts: Array<{ ssh: Record<string, unknown> }> }).hosts;
  hosts[1].ssh.bastion = `127.0.0.1:${bastion.port}`;
  const cluster = clusterSchema.parse(input);
  const f0 = forwards();
  const t = await openTransport(cluster, cluster.spec.hosts[1]);
  assert.equal((await t.exec("hostname")).code, 0);
  await t.close();
  assert.equal(forwards() - f0, 1);
});

test("the bastion's host key is verified: unknown bastion refused, naming it", async () => {
  writeFileSync(fleet.knownHostsFile, fleet.knownHostsLines());
  const cluster = clusterSchema.parse(fleet.clusterInput({ ssh: { bastion: `root@127.0.0.1:${bastion.port}` } }));
  await assert.rejects(
    () => openTransport(cluster, cluster.spec.hosts[0]),
    (e: unknown) => e instanceof HostError && new RegExp(`node1: unknown host key for \\[127\\.0\\.0\\.1\\]:${bastion.port}`).test(e.message),
  );
});

test("the target's host key is verified too, through the tunnel", async () => {
  // Bastion trusted, target not: refused for the target.
  writeFileSync(fleet.knownHostsFile, bastionLine());
  const cluster = clusterSchema.parse(fleet.clusterInput({ ssh: { bastion: `root@127.0.0.1:${bastion.port}` } }));
  await assert.rejects(
    () => openTransport(cluster, cluster.spec.hosts[0]),
    (e: unknown) => e instanceof HostError && new RegExp(`node1: unknown host key for \\[127\\.0\\.0\\.1\\]:${fleet.servers[0].port}`).test(e.message),
  );
  // Wrong key recorded for the target: refused as changed.
  writeFileSync(fleet.knownHostsFile, bastionLine() + `[127.0.0.1]:${fleet.servers[0].port} ${fleet.servers[1].hostKeys.ed25519!.split(" ").slice(0, 2).join(" ")}\n`);
  await assert.rejects(() => openTransport(cluster, cluster.spec.hosts[0], { acceptNewHostKeys: true }), /node1: REMOTE HOST KEY CHANGED/);
});
