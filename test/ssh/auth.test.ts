// Authentication against real sshd: an encrypted key whose passphrase comes from the environment
// variable named by ssh.passphraseEnv, the SSH agent, a password from ssh.passwordEnv. Secrets
// never show up in error messages.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { clusterSchema } from "../../provisioner/spec/schema.js";
import { openTransport } from "../../provisioner/transport/pool.js";
import { HostError } from "../../provisioner/errors.js";
import { startFleet, createSudoUser, TEST_USER, type SshFleet } from "../helpers/sshd.js";

let fleet: SshFleet;
let encKey: string;
const passphrase = `pp-${randomBytes(8).toString("hex")}`;

before(async () => {
  fleet = await startFleet(1);
  encKey = join(fleet.dir, "id_encrypted");
  const r = spawnSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", passphrase, "-C", "enc", "-f", encKey]);
  assert.equal(r.status, 0);
  // Authorize it too (the server reads authorized_keys on each login).
  const ak = join(fleet.servers[0].dir, "authorized_keys");
  writeFileSync(ak, readFileSync(ak, "utf8") + readFileSync(`${encKey}.pub`, "utf8"));
});
after(async () => {
  delete process.env.KPT_TEST_PASSPHRASE;
  delete process.env.KPT_TEST_PASSWORD;
  await fleet?.stop();
});

async function connectsAndRuns(input: Record<string, unknown>): Promise<string> {
  const c = clusterSchema.parse(input);
  const t = await openTransport(c, c.spec.hosts[0]);
  try {
    return (await t.exec("id -un")).stdout.trim();
  } finally {
    await t.close();
  }
}

test("encrypted key: passphrase from the variable named by ssh.passphraseEnv", async () => {
  const input = fleet.clusterInput({ ssh: { identityFile: encKey, passphraseEnv: "KPT_TEST_PASSPHRASE" } });
  delete process.env.KPT_TEST_PASSPHRASE;
  await assert.rejects(() => connectsAndRuns(input), /node1: environment variable KPT_TEST_PASSPHRASE \(ssh\.passphraseEnv\) is not set/);
  process.env.KPT_TEST_PASSPHRASE = "not-the-passphrase";
  await assert.rejects(
    () => connectsAndRuns(input),
    (e: unknown) => e instanceof HostError && /is encrypted: the passphrase in \$KPT_TEST_PASSPHRASE does not open it/.test(e.message) && !e.message.includes("not-the-passphrase"),
  );
  process.env.KPT_TEST_PASSPHRASE = passphrase;
  assert.equal(await connectsAndRuns(input), "root");
  // Without passphraseEnv the error says what to set.
  await assert.rejects(() => connectsAndRuns(fleet.clusterInput({ ssh: { identityFile: encKey } })), /is encrypted: set ssh\.passphraseEnv/);
});

test("SSH agent (SSH_AUTH_SOCK) when useAgent, with no identity file", async () => {
  const sock = join(fleet.dir, "agent.sock");
  const agent: ChildProcess = spawn("ssh-agent", ["-D", "-a", sock], { stdio: "ignore" });
  const saved = process.env.SSH_AUTH_SOCK;
  try {
    for (let i = 0; i < 100 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
    const add = spawnSync("ssh-add", [fleet.clientKey], { env: { ...process.env, SSH_AUTH_SOCK: sock }, encoding: "utf8" });
    assert.equal(add.status, 0, add.stderr);
    process.env.SSH_AUTH_SOCK = sock;
    const input = fleet.clusterInput({ ssh: { identityFile: undefined, useAgent: true } });
    assert.equal(await connectsAndRuns(input), "root");
    // useAgent: false and no other credentials: a clear error before any connection.
    await assert.rejects(() => connectsAndRuns(fleet.clusterInput({ ssh: { identityFile: undefined, useAgent: false } })), /node1: no SSH credentials/);
  } finally {
    if (saved === undefined) delete process.env.SSH_AUTH_SOCK;
    else process.env.SSH_AUTH_SOCK = saved;
    if (agent.pid) process.kill(agent.pid, "SIGTERM");
  }
});

test("password from the variable named by ssh.passwordEnv; a wrong one is an authentication error without the password", async () => {
  const cleanup = createSudoUser();
  const password = `pw-${randomBytes(8).toString("hex")}`;
  try {
    const r = spawnSync("chpasswd", [], { input: `${TEST_USER}:${password}\n`, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
    const input = fleet.clusterInput({ ssh: { user: TEST_USER, identityFile: undefined, useAgent: false, passwordEnv: "KPT_TEST_PASSWORD" } });
    process.env.KPT_TEST_PASSWORD = password;
    assert.equal(await connectsAndRuns(input), TEST_USER);
    process.env.KPT_TEST_PASSWORD = "wrong-password";
    await assert.rejects(
      () => connectsAndRuns(input),
      (e: unknown) =>
        e instanceof HostError && /SSH authentication failed for kpt-user@127\.0\.0\.1:\d+ \(tried: password\)/.test(e.message) && !e.message.includes("wrong-password"),
    );
  } finally {
    cleanup();
  }
});
