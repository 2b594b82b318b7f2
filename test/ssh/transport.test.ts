// SshTransport and LocalTransport against real OpenSSH servers on 127.0.0.1.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clusterSchema, type Cluster } from "../../provisioner/spec/schema.js";
import { openTransport } from "../../provisioner/transport/pool.js";
import { connectHosts, closeHosts } from "../../provisioner/engine/hosts.js";
import { LocalTransport } from "../../provisioner/transport/local.js";
import type { Transport } from "../../provisioner/transport/transport.js";
import { CommandError, HostError, RuntimeFailure } from "../../provisioner/errors.js";
import { SSH_CONNECT_TIMEOUT_MS } from "../../provisioner/constants.js";
import { startFleet, freePort, keygen, childPids, createSudoUser, TEST_USER, type SshFleet } from "../helpers/sshd.js";

let fleet: SshFleet;
let cluster: Cluster;
let work: string;

before(async () => {
  fleet = await startFleet(2);
  cluster = clusterSchema.parse(fleet.clusterInput());
  work = mkdtempSync(join(tmpdir(), "kpt-transport-"));
});

after(async () => {
  await fleet?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

function sha(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

for (const kind of ["ssh", "local"] as const) {
  describe(`${kind} transport`, () => {
    let t: Transport;
    before(async () => {
      const spec = kind === "ssh" ? cluster.spec.hosts[0] : { ...cluster.spec.hosts[0], connection: "local" as const };
      t = await openTransport(cluster, spec);
    });
    after(async () => {
      await t?.close();
    });

    test("exec returns stdout, stderr and code; runs with /bin/sh", async () => {
      const r = await t.exec("echo out; echo err >&2; exit 0");
      assert.equal(r.stdout, "out\n");
      assert.equal(r.stderr, "err\n");
      assert.equal(r.code, 0);
      const r2 = await t.exec("exit 3", { check: false });
      assert.equal(r2.code, 3);
    });

    test("a failing command throws CommandError carrying its stderr", async () => {
      await assert.rejects(
        () => t.exec("echo 'no such thing here' >&2; exit 7"),
        (e: unknown) => {
          assert.ok(e instanceof CommandError);
          assert.equal(e.code, 7);
          assert.match(e.stderr, /no such thing here/);
          assert.match(e.details ?? "", /no such thing here/);
          assert.match(e.message, new RegExp(`^${t.host}: command failed \\(exit 7\\)`));
          return true;
        },
      );
    });

    test("stdin passes through to the command", async () => {
      const r = await t.exec("wc -c", { stdin: Buffer.alloc(12345, 1) });
      assert.equal(r.stdout.trim(), "12345");
    });

    test("timeoutMs kills a command", async () => {
      const t0 = Date.now();
      await assert.rejects(() => t.exec("sleep 30", { timeoutMs: 500 }), /command timed out after 500 ms and was killed: sleep 30/);
      assert.ok(Date.now() - t0 < 5000);
    });

    test("many commands at once share the connection", async () => {
      const logins = () => (fleet.servers[0].log().match(/Accepted publickey/g) ?? []).length;
      const l0 = logins();
      const rs = await Promise.all(Array.from({ length: 40 }, (_, i) => t.exec(`echo ${i}`)));
      // 40 commands (more than OpenSSH's 10 sessions per connection), no new login.
      if (kind === "ssh") assert.equal(logins(), l0);
      assert.deepEqual(
        rs.map((r) => r.stdout.trim()),
        Array.from({ length: 40 }, (_, i) => String(i)),
      );
    });

    test("readFile: content, or undefined when missing", async () => {
      const p = join(work, `${kind}-read.bin`);
      const data = randomBytes(100_000);
      writeFileSync(p, data);
      const got = await t.readFile(p);
      assert.ok(got && got.equals(data));
      assert.equal(await t.readFile(join(work, "does-not-exist")), undefined);
    });

    test("writeFile of a 50 MB file: content, mode and owner as asked (stat)", async () => {
      const p = join(work, `${kind}-sub/dir/big.bin`);
      const data = randomBytes(50 * 1024 * 1024);
      const t0 = Date.now();
      await t.writeFile(p, data, { mode: 0o640, owner: "root:daemon" });
      const ms = Date.now() - t0;
      console.log(`# ${kind}: wrote 50 MB in ${ms} ms`);
      const st = statSync(p);
      assert.equal(st.mode & 0o7777, 0o640);
      assert.equal(st.uid, 0);
      const daemonGid = Number(spawnSync("getent", ["group", "daemon"], { encoding: "utf8" }).stdout.split(":")[2]);
      assert.equal(st.gid, daemonGid);
      assert.equal(sha(readFileSync(p)), sha(data));
      assert.equal(statSync(join(work, `${kind}-sub/dir`)).mode & 0o777, 0o755);
      // Overwrite: mode applied again whatever the old one, no temp files left.
      await t.writeFile(p, "small\n", { mode: 0o600 });
      assert.equal(readFileSync(p, "utf8"), "small\n");
      assert.equal(statSync(p).mode & 0o7777, 0o600);
      assert.deepEqual(readdirSync(join(work, `${kind}-sub/dir`)), ["big.bin"]);
    });

    test("secrets written or piped never appear in any process's argv", async () => {
      const secret = `kpt-secret-${randomBytes(12).toString("hex")}`;
      const data = Buffer.concat([Buffer.from(`${secret}\n`), randomBytes(30 * 1024 * 1024)]);
      let seen = 0;
      let samples = 0;
      let stop = false;
      const watcher = (async () => {
        while (!stop) {
          const ps = spawnSync("ps", ["-eww", "-o", "args="], { encoding: "utf8" });
          samples++;
          if (ps.stdout.includes(secret)) seen++;
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      await t.writeFile(join(work, `${kind}-secret`), data, { mode: 0o600 });
      await t.exec("cat > /dev/null; sleep 0.3", { stdin: `${secret}\n` });
      stop = true;
      await watcher;
      assert.ok(samples > 3, `ps sampled ${samples} times`);
      assert.equal(seen, 0);
    });
  });
}

describe("atomic writes", () => {
  test("a connection killed mid-write leaves the old file intact and no half file", async () => {
    const server = fleet.servers[1];
    const t = await openTransport(cluster, cluster.spec.hosts[1]);
    const dir = join(work, "atomic");
    const p = join(dir, "target.bin");
    const old = Buffer.from("the old content\n");
    await t.writeFile(p, old, { mode: 0o644 });
    const big = randomBytes(300 * 1024 * 1024);
    const writing = t.writeFile(p, big, { mode: 0o644 }).then(
      () => "finished",
      (e: Error) => e,
    );
    // Wait until the temp file is growing, then kill the sshd session processes of this connection.
    let killed = false;
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline) {
      const tmp = readdirSync(dir).find((f) => f.includes(".kubeprov-tmp."));
      if (tmp) {
        let size = 0;
        try {
          size = statSync(join(dir, tmp)).size;
        } catch {
          /* gone */
        }
        if (size > 8 * 1024 * 1024) {
          // This server has one connection (ours): its per-connection sshd processes are the children.
          for (const pid of childPids(server.pid)) process.kill(pid, "SIGKILL");
          killed = true;
          break;
        }
      }
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.ok(killed, "the write was caught mid-way");
    const result = await writing;
    assert.ok(result instanceof Error, `writeFile should fail, got ${String(result)}`);
    assert.ok(result instanceof HostError || result instanceof CommandError);
    assert.equal(readFileSync(p, "utf8"), "the old content\n");
    // The temp file is removed by the remote shell once cat sees the early end of file.
    const d2 = Date.now() + 5000;
    while (Date.now() < d2 && readdirSync(dir).some((f) => f.includes(".kubeprov-tmp."))) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(readdirSync(dir), ["target.bin"]);
    // The transport knows its connection is gone.
    await assert.rejects(() => t.exec("true"), /connection lost/);
    await t.close();
  });
});

describe("connection failures", () => {
  test("wrong client key: a clear authentication error naming the host", async () => {
    const other = join(fleet.dir, "other_key");
    keygen(other, "ed25519", "not-authorized");
    const c = clusterSchema.parse(fleet.clusterInput({ ssh: { identityFile: other } }));
    const t0 = Date.now();
    await assert.rejects(
      () => openTransport(c, c.spec.hosts[0]),
      (e: unknown) => {
        assert.ok(e instanceof HostError);
        assert.match(e.message, /^node1: SSH authentication failed for root@127\.0\.0\.1:\d+/);
        assert.match(e.message, /publickey/);
        return true;
      },
    );
    assert.ok(Date.now() - t0 < 5000, "authentication is not retried");
  });

  test("unreachable host (closed port on 127.0.0.1) fails fast, naming the host", async () => {
    const port = await freePort();
    const c = clusterSchema.parse(
      fleet.clusterInput({ hosts: [{ name: "gone", address: "127.0.0.1", roles: ["control-plane"], ssh: { port } }] }),
    );
    const t0 = Date.now();
    await assert.rejects(() => openTransport(c, c.spec.hosts[0]), /gone: cannot connect to root@127\.0\.0\.1:\d+: ECONNREFUSED/);
    const ms = Date.now() - t0;
    console.log(`# closed port refused after ${ms} ms (with retries)`);
    assert.ok(ms < 10_000);
  });

  test("a server that never answers times out within the connect timeout (< 30 s), naming the host", async () => {
    assert.ok(SSH_CONNECT_TIMEOUT_MS <= 30_000);
    const silent: Server = createServer(() => {
      /* accept and say nothing */
    });
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", () => r()));
    const port = (silent.address() as { port: number }).port;
    try {
      const c = clusterSchema.parse(
        fleet.clusterInput({ hosts: [{ name: "mute", address: "127.0.0.1", roles: ["control-plane"], ssh: { port } }] }),
      );
      const t0 = Date.now();
      await assert.rejects(() => openTransport(c, c.spec.hosts[0], { connectTimeoutMs: 3000 }), /mute: cannot connect to root@127\.0\.0\.1:\d+: timed out/);
      const ms = Date.now() - t0;
      assert.ok(ms >= 2500 && ms < 6000, `took ${ms} ms`);
    } finally {
      silent.close();
    }
  });

  test("connectHosts lists every failing host in one error", async () => {
    const p1 = await freePort();
    const c = clusterSchema.parse(
      fleet.clusterInput({
        hosts: [
          { name: "good", address: "127.0.0.1", roles: ["control-plane"], ssh: { port: fleet.servers[0].port } },
          { name: "bad-a", address: "127.0.0.1", roles: ["worker"], ssh: { port: p1 } },
          { name: "bad-b", address: "127.0.0.1", roles: ["worker"], ssh: { port: p1 } },
        ],
      }),
    );
    await assert.rejects(
      () => connectHosts(c, { connectAttempts: 1 }),
      (e: unknown) => {
        assert.ok(e instanceof RuntimeFailure);
        assert.equal(e.exitCode, 1);
        assert.match(e.message, /cannot connect to 2 of 3 hosts: bad-a, bad-b/);
        assert.match(e.details ?? "", /^bad-a: cannot connect to root@127\.0\.0\.1:\d+: ECONNREFUSED/m);
        assert.match(e.details ?? "", /^bad-b: /m);
        return true;
      },
    );
    const hosts = await connectHosts(clusterSchema.parse(fleet.clusterInput()));
    assert.deepEqual(
      hosts.map((h) => [h.name, h.address, h.nodeIP, h.roles]),
      [
        ["node1", "127.0.0.1", "127.0.0.1", ["control-plane"]],
        ["node2", "127.0.0.1", "127.0.0.1", ["worker"]],
      ],
    );
    await closeHosts(hosts);
  });
});

describe("sudo for a non-root user", () => {
  let cleanup: (() => void) | undefined;
  before(() => {
    cleanup = createSudoUser();
  });
  after(() => cleanup?.());

  test("commands run as the user, sudo:true runs as root, stdin passes through, writes land owned by root", async () => {
    const c = clusterSchema.parse(fleet.clusterInput({ ssh: { user: TEST_USER } }));
    const t = await openTransport(c, c.spec.hosts[0]);
    try {
      assert.equal((await t.exec("id -un")).stdout.trim(), TEST_USER);
      assert.equal((await t.exec("id -un", { sudo: true })).stdout.trim(), "root");
      assert.equal((await t.exec("cat", { sudo: true, stdin: "through sudo" })).stdout, "through sudo");
      await assert.rejects(
        () => t.exec("cat /etc/shadow >/dev/null"),
        (e: unknown) => e instanceof CommandError && /Permission denied/.test(e.stderr),
      );
      const p = join(work, "sudo-dir", "owned.txt");
      await t.writeFile(p, "x\n", { mode: 0o600 });
      assert.equal(statSync(p).uid, 0);
      assert.equal((await t.readFile("/etc/shadow"))!.length > 0, true);
    } finally {
      await t.close();
    }
  });
});

test("LocalTransport reports its host name in errors", async () => {
  const t = new LocalTransport("here");
  await assert.rejects(() => t.exec("echo boom >&2; false"), /^CommandError: here: command failed|here: command failed/);
  assert.equal(existsSync("/"), true);
});
