// Machines on the docker driver, for real: `kubeprov up --no-kubernetes` makes systemd node
// containers reachable over SSH with the cluster's key and recorded host keys; re-up converges;
// delete leaves nothing. Bad input fails clearly before anything is created.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ensureNodeImage } from "../../provisioner/drivers/docker/nodeimage.js";
import { CLI_ARGS, dockerCleanup, dockerLines, kubeprov, makeCliEnv } from "../helpers/kubeprov-cli.js";

const suffix = String(process.pid % 100000);
const NAME = `kpt-m${suffix}`;
const NAME_B = `kpt-mb${suffix}`;
const env = makeCliEnv("kpt-machines-");

interface NodeRow {
  name: string;
  address: string;
  roles: string[];
  machine: string;
}

async function nodes(name = NAME): Promise<NodeRow[]> {
  const r = await kubeprov(env, ["node", "list", "--name", name, "-o", "json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as NodeRow[];
}

async function ssh(node: string, command: string, name = NAME) {
  return kubeprov(env, ["ssh", "--name", name, node, "--", command]);
}

async function containerIds(name = NAME): Promise<string[]> {
  return (await dockerLines(["ps", "-aq", "--no-trunc", "--filter", `label=io.kubeprov.cluster=${name}`])).sort();
}

function summaryOf(stdout: string): { changed: number; unchanged: number } {
  const events = stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  const s = events.find((e) => e.type === "summary");
  assert.ok(s, `no summary event in:\n${stdout}`);
  return s;
}

describe("machines: kubeprov up --no-kubernetes on docker", { timeout: 20 * 60_000 }, () => {
  before(async () => {
    const img = await ensureNodeImage({ log: (m) => console.log(`# ${m}`) });
    console.log(`# node image ${img.image} (${img.built ? `built in ${img.durationMs} ms` : "reused"})`);
  });
  after(async () => {
    await dockerCleanup(NAME);
    await dockerCleanup(NAME_B);
    env.cleanup();
  });

  test("3 nodes come up: systemd running, fix-ups in place, SSH with the cluster's key and recorded host keys", async () => {
    const r = await kubeprov(env, ["up", "--name", NAME, "--nodes", "3", "--no-kubernetes", "-o", "json"]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    console.log(`# up --no-kubernetes, 3 nodes: ${r.ms} ms`);
    const s = summaryOf(r.stdout);
    assert.equal(s.changed, 3);
    assert.equal(s.unchanged, 0);

    const list = await nodes();
    assert.deepEqual(list.map((n) => [n.name, n.roles, n.machine]), [
      [`${NAME}-control-plane`, ["control-plane"], `${NAME}-control-plane`],
      [`${NAME}-worker`, ["worker"], `${NAME}-worker`],
      [`${NAME}-worker2`, ["worker"], `${NAME}-worker2`],
    ]);
    const subnetPrefix = list[0].address.split(".").slice(0, 3).join(".");
    assert.match(list[0].address, /^10\.213\.\d+\.10$/);
    assert.deepEqual(list.map((n) => n.address), [`${subnetPrefix}.10`, `${subnetPrefix}.11`, `${subnetPrefix}.12`]);

    const hostPanic = readFileSync("/proc/sys/kernel/panic", "utf8").trim();
    const hostOvercommit = readFileSync("/proc/sys/vm/overcommit_memory", "utf8").trim();
    const hostKeys = new Set<string>();
    for (const n of list) {
      const st = await ssh(n.name, "systemctl is-system-running; hostname; stat -c '%F %t:%T' /dev/kmsg; cat /proc/sys/vm/overcommit_memory /proc/sys/kernel/panic /proc/sys/kernel/panic_on_oops; systemctl is-enabled containerd haproxy keepalived firewalld || true");
      assert.equal(st.code, 0, st.stderr);
      const lines = st.stdout.trim().split("\n");
      assert.equal(lines[0], "running", `${n.name}: ${st.stdout}`);
      assert.equal(lines[1], n.name);
      assert.equal(lines[2], "character special file 1:b", "/dev/kmsg is char device 1,11");
      assert.deepEqual(lines.slice(3, 6), ["1", "10", "1"]);
      assert.deepEqual(lines.slice(6), ["disabled", "disabled", "disabled", "disabled"]);
      // Each node made its own host keys at first boot.
      const key = await ssh(n.name, "cut -d' ' -f2 /etc/ssh/ssh_host_ed25519_key.pub");
      hostKeys.add(key.stdout.trim());
    }
    assert.equal(hostKeys.size, 3, "every node has its own SSH host key");
    // The host's kernel settings were not touched.
    assert.equal(readFileSync("/proc/sys/kernel/panic", "utf8").trim(), hostPanic);
    assert.equal(readFileSync("/proc/sys/vm/overcommit_memory", "utf8").trim(), hostOvercommit);

    // Local files: private key 0600, known_hosts with every node's address.
    const dir = join(env.home, "clusters", NAME);
    assert.equal(statSync(join(dir, "id_ed25519")).mode & 0o777, 0o600);
    const kh = readFileSync(join(dir, "known_hosts"), "utf8");
    for (const n of list) assert.match(kh, new RegExp(`^${n.address.replace(/\./g, "\\.")} ssh-ed25519 `, "m"));
    assert.match(readFileSync(join(dir, "cluster.yaml"), "utf8"), /cgroupDriver: cgroupfs/);
  });

  test("nodes reach each other (ICMP and TCP to sshd on the other nodes' addresses)", async () => {
    const list = await nodes();
    for (const from of list) {
      for (const to of list) {
        if (to.name === from.name) continue;
        const r = await ssh(from.name, `ping -c1 -W2 ${to.address} >/dev/null && timeout 5 bash -c 'exec 3<>/dev/tcp/${to.address}/22; head -c 7 <&3'`);
        assert.equal(r.code, 0, `${from.name} -> ${to.name}: ${r.stderr}`);
        assert.equal(r.stdout, "SSH-2.0");
      }
    }
  });

  test("ssh returns the remote exit code and refuses a node whose host key does not match", async () => {
    const r = await ssh(`${NAME}-worker`, "echo out; echo err >&2; exit 7");
    assert.equal(r.code, 7);
    assert.equal(r.stdout.trim(), "out");
    assert.match(r.stderr, /err/);
    const unknown = await kubeprov(env, ["ssh", "--name", NAME, "nope", "--", "true"]);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /has no node "nope"/);

    // Swap worker's recorded keys for control-plane's: strict checking must refuse.
    const list = await nodes();
    const khPath = join(env.home, "clusters", NAME, "known_hosts");
    const original = readFileSync(khPath, "utf8");
    const cpKeys = original.split("\n").filter((l) => l.startsWith(`${list[0].address} `)).map((l) => l.split(" ").slice(1).join(" "));
    const forged = original
      .split("\n")
      .filter((l) => l && !l.startsWith(`${list[1].address} `))
      .concat(cpKeys.map((k) => `${list[1].address} ${k}`))
      .join("\n") + "\n";
    writeFileSync(khPath, forged);
    const refused = await ssh(list[1].name, "true");
    assert.equal(refused.code, 255);
    assert.match(refused.stderr, /host key|HOST IDENTIFICATION/i);
    // `up` records the real keys again.
    const again = await kubeprov(env, ["up", "--name", NAME, "--nodes", "3", "--no-kubernetes"]);
    assert.equal(again.code, 0, again.stderr);
    assert.equal(readFileSync(khPath, "utf8"), original);
    assert.equal((await ssh(list[1].name, "true")).code, 0);
  });

  test("re-up is a no-op: nothing created, same containers", async () => {
    const before = await containerIds();
    assert.equal(before.length, 3);
    const r = await kubeprov(env, ["up", "--name", NAME, "--nodes", "3", "--no-kubernetes", "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    const s = summaryOf(r.stdout);
    assert.equal(s.changed, 0);
    assert.equal(s.unchanged, 3);
    assert.deepEqual(await containerIds(), before);
    console.log(`# re-up (converged), 3 nodes: ${r.ms} ms`);
  });

  test("a failure half-way is repaired by the next up (killed node, removed node, up killed mid-way)", async () => {
    const before = await nodes();
    await dockerLines(["kill", `${NAME}-worker`]);
    await dockerLines(["rm", "-f", `${NAME}-worker2`]);
    const r = await kubeprov(env, ["up", "--name", NAME, "--nodes", "3", "--no-kubernetes", "-o", "json"]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(summaryOf(r.stdout).changed, 2);
    assert.deepEqual(await nodes(), before, "same names, addresses and roles");
    for (const n of before) assert.equal((await ssh(n.name, "systemctl is-system-running")).stdout.trim(), "running");

    // Grow to 4 nodes and kill `up` as soon as the new container exists.
    const child = spawn(process.execPath, [...CLI_ARGS, "up", "--name", NAME, "--nodes", "4", "--no-kubernetes"], {
      env: { ...process.env, KUBEPROV_HOME: env.home, KUBECONFIG: env.kubeconfig },
      stdio: "ignore",
    });
    const newNode = `${NAME}-worker3`;
    const deadline = Date.now() + 60_000;
    while ((await dockerLines(["ps", "-aq", "--filter", `name=^/${newNode}$`])).length === 0) {
      assert.ok(Date.now() < deadline, "the new node never appeared");
      await new Promise((res) => setTimeout(res, 50));
    }
    child.kill("SIGKILL");
    await new Promise((res) => child.once("exit", res));
    const fixed = await kubeprov(env, ["up", "--name", NAME, "--nodes", "4", "--no-kubernetes"]);
    assert.equal(fixed.code, 0, fixed.stderr);
    const four = await nodes();
    assert.equal(four.length, 4);
    const r4 = await ssh(newNode, "systemctl is-system-running");
    assert.equal(r4.code, 0, r4.stderr);
    assert.equal(r4.stdout.trim(), "running");
  });

  test("delete leaves no container, volume, network or local file; a second delete succeeds", async () => {
    const dir = join(env.home, "clusters", NAME);
    assert.ok(existsSync(dir));
    const r = await kubeprov(env, ["delete", "--name", NAME]);
    assert.equal(r.code, 0, r.stderr);
    const label = `label=io.kubeprov.cluster=${NAME}`;
    assert.deepEqual(await dockerLines(["ps", "-aq", "--filter", label]), []);
    assert.deepEqual(await dockerLines(["volume", "ls", "-q", "--filter", label]), []);
    assert.deepEqual(await dockerLines(["network", "ls", "-q", "--filter", label]), []);
    assert.ok(!existsSync(dir));
    const again = await kubeprov(env, ["delete", "--name", NAME]);
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stdout, /nothing to delete/);
  });

  test("--cpus/--memory limit the node; delete finds a cluster by its labels when its local files are gone", async () => {
    const r = await kubeprov(env, ["up", "--name", NAME_B, "--no-kubernetes", "--cpus", "0.5", "--memory", "512m"]);
    assert.equal(r.code, 0, r.stderr);
    console.log(`# up --no-kubernetes, 1 node: ${r.ms} ms`);
    const [limits] = await dockerLines(["inspect", "--format", "{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}}", `${NAME_B}-control-plane`]);
    assert.equal(limits, `${0.5e9} ${512 * 1024 * 1024}`);
    rmSync(join(env.home, "clusters", NAME_B), { recursive: true, force: true });
    const d = await kubeprov(env, ["delete", "--name", NAME_B]);
    assert.equal(d.code, 0, d.stderr);
    const label = `label=io.kubeprov.cluster=${NAME_B}`;
    assert.deepEqual(await dockerLines(["ps", "-aq", "--filter", label]), []);
    assert.deepEqual(await dockerLines(["volume", "ls", "-q", "--filter", label]), []);
    assert.deepEqual(await dockerLines(["network", "ls", "-q", "--filter", label]), []);
  });
});

describe("machines: bad input fails clearly and creates nothing", () => {
  const closed = mkdtempSync(join(tmpdir(), "kpt-nodocker-"));
  after(() => rmSync(closed, { recursive: true, force: true }));
  const bad = `kpt-bad${suffix}`;

  async function nothingCreated() {
    assert.deepEqual(await dockerLines(["ps", "-aq", "--filter", `label=io.kubeprov.cluster=${bad}`]), []);
    assert.deepEqual(await dockerLines(["network", "ls", "-q", "--filter", `label=io.kubeprov.cluster=${bad}`]), []);
    assert.ok(!existsSync(join(env.home, "clusters", bad)));
  }

  test("an invalid name: exit 2", async () => {
    const r = await kubeprov(env, ["up", "--name", "Kpt_Bad!", "--no-kubernetes"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--name "Kpt_Bad!": a cluster name must be a DNS-1123 label/);
    assert.deepEqual(await dockerLines(["ps", "-aq", "--filter", "label=io.kubeprov.cluster=Kpt_Bad!"]), []);
  });

  test("--control-planes more than --nodes: exit 2", async () => {
    const r = await kubeprov(env, ["up", "--name", bad, "--nodes", "2", "--control-planes", "3", "--no-kubernetes"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /--control-planes 3 is more than --nodes 2/);
    await nothingCreated();
  });

  test("Docker not running: exit 1 naming dockerd; an even number of control planes warns about etcd quorum", async () => {
    const sock = join(closed, "docker.sock"); // nothing listens there
    const r = await kubeprov(env, ["up", "--name", bad, "--nodes", "2", "--control-planes", "2", "--no-kubernetes"], { DOCKER_HOST: `unix://${sock}` });
    assert.equal(r.code, 1);
    assert.match(r.stdout + r.stderr, /even: etcd needs a majority \(quorum\)/);
    assert.match(r.stderr, /Docker is not running: cannot reach the Docker daemon \(dockerd\)/);
    assert.match(r.stderr, new RegExp(sock.replace(/[/.]/g, "\\$&")));
    const n = await kubeprov(env, ["node", "list", "--name", bad], { DOCKER_HOST: `unix://${sock}` });
    assert.equal(n.code, 1);
    assert.match(n.stderr, /dockerd/);
    await nothingCreated();
  });
});

describe("machines: concurrent ups", { timeout: 10 * 60_000 }, () => {
  const names = [0, 1, 2, 3].map((i) => `kpt-c${i}-${suffix}`);
  const cenv = makeCliEnv("kpt-concurrent-");
  after(async () => {
    for (const n of names) await dockerCleanup(n);
    cenv.cleanup();
  });

  test("four clusters at once get four different subnets; the same cluster twice at once converges to one", async () => {
    const rs = await Promise.all([
      ...names.map((n) => kubeprov(cenv, ["up", "--name", n, "--no-kubernetes"])),
      kubeprov(cenv, ["up", "--name", names[0], "--no-kubernetes"]),
    ]);
    for (const r of rs) assert.equal(r.code, 0, r.stderr);
    const subnets = new Set<string>();
    for (const n of names) {
      const [row] = await (async () => {
        const r = await kubeprov(cenv, ["node", "list", "--name", n, "-o", "json"]);
        return JSON.parse(r.stdout) as NodeRow[];
      })();
      subnets.add(row.address.split(".").slice(0, 3).join("."));
      const ids = await dockerLines(["ps", "-aq", "--filter", `label=io.kubeprov.cluster=${n}`]);
      assert.equal(ids.length, 1, `${n}: one container`);
      const r = await kubeprov(cenv, ["ssh", "--name", n, row.name, "--", "systemctl is-system-running"]);
      assert.equal(r.code, 0, `${n}: ${r.stderr}`);
      assert.equal(r.stdout.trim(), "running");
    }
    assert.equal(subnets.size, names.length);
    for (const n of names) assert.equal((await kubeprov(cenv, ["delete", "--name", n])).code, 0);
  });
});
