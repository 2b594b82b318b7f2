// The certificates in use: a two-member etcd (Debian's /usr/bin/etcd) on loopback, serving and peering
// with the etcd/server and etcd/peer certificates of two control planes that share the etcd CA, with
// client and peer certificate authentication on. etcdctl with apiserver-etcd-client writes and reads;
// a client certificate from another cluster's etcd CA is refused.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { freePort } from "../helpers/sshd.js";
import { join } from "node:path";
import { pkiContext } from "../../provisioner/pki/certlist.js";
import { ensurePki } from "../../provisioner/pki/ensure.js";
import { sharedRelPaths } from "../../provisioner/pki/plan.js";
import { FsStore } from "../../provisioner/pki/store.js";
import { cluster, tmp } from "./pki-support.js";

const ETCD = "/usr/bin/etcd";
const ETCDCTL = "/usr/bin/etcdctl";
const procs: ChildProcess[] = [];
const dirs: string[] = [];
let clientURLs: string[] = [];
let cp1 = "";
let cp2 = "";
let foreign = "";
const logs: Record<string, string> = {};

function etcdctl(pkiDir: string, endpoint: string, args: string[], cert = "apiserver-etcd-client"): { code: number; out: string } {
  const r = spawnSync(
    ETCDCTL,
    ["--endpoints", endpoint, "--cacert", join(pkiDir, "etcd/ca.crt"), "--cert", join(pkiDir, `${cert}.crt`), "--key", join(pkiDir, `${cert}.key`), "--dial-timeout", "3s", "--command-timeout", "5s", ...args],
    { encoding: "utf8", env: { ...process.env, ETCDCTL_API: "3" } },
  );
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

before(async () => {
  if (!existsSync(ETCD)) return;
  const c = cluster({ hosts: [
    { name: "cp1", address: "127.0.0.1", roles: ["control-plane"] },
    { name: "cp2", address: "127.0.0.2", internalAddress: "127.0.0.1", roles: ["control-plane"] },
  ] });
  const store = new FsStore();
  cp1 = tmp("etcd-cp1");
  cp2 = tmp("etcd-cp2");
  foreign = tmp("etcd-foreign");
  dirs.push(cp1, cp2, foreign);
  await ensurePki(store, pkiContext(c, "cp1", { certDir: join(cp1, "pki"), kubeconfigDir: cp1 }), { kubeconfigs: false });
  const shared = new Map(sharedRelPaths().map((rel) => [rel, readFileSync(join(cp1, "pki", rel))]));
  await ensurePki(store, pkiContext(c, "cp2", { certDir: join(cp2, "pki"), kubeconfigDir: cp2 }), { kubeconfigs: false, shared });
  await ensurePki(store, pkiContext(c, "cp1", { certDir: join(foreign, "pki"), kubeconfigDir: foreign }), { kubeconfigs: false });

  const ports = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
  const members = [
    { name: "cp1", dir: cp1, client: ports[0]!, peer: ports[1]! },
    { name: "cp2", dir: cp2, client: ports[2]!, peer: ports[3]! },
  ];
  const initialCluster = members.map((m) => `${m.name}=https://127.0.0.1:${m.peer}`).join(",");
  clientURLs = members.map((m) => `https://127.0.0.1:${m.client}`);
  for (const m of members) {
    const pki = join(m.dir, "pki");
    const p = spawn(
      ETCD,
      [
        "--name", m.name,
        "--data-dir", join(m.dir, "data"),
        "--listen-client-urls", `https://127.0.0.1:${m.client}`,
        "--advertise-client-urls", `https://127.0.0.1:${m.client}`,
        "--listen-peer-urls", `https://127.0.0.1:${m.peer}`,
        "--initial-advertise-peer-urls", `https://127.0.0.1:${m.peer}`,
        "--initial-cluster", initialCluster,
        "--initial-cluster-state", "new",
        "--initial-cluster-token", `kpt-pki-${process.pid}`,
        "--cert-file", join(pki, "etcd/server.crt"),
        "--key-file", join(pki, "etcd/server.key"),
        "--client-cert-auth",
        "--trusted-ca-file", join(pki, "etcd/ca.crt"),
        "--peer-cert-file", join(pki, "etcd/peer.crt"),
        "--peer-key-file", join(pki, "etcd/peer.key"),
        "--peer-client-cert-auth",
        "--peer-trusted-ca-file", join(pki, "etcd/ca.crt"),
        "--listen-metrics-urls", "",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    logs[m.name] = "";
    p.stdout!.on("data", (d: Buffer) => (logs[m.name] += d.toString()));
    p.stderr!.on("data", (d: Buffer) => (logs[m.name] += d.toString()));
    procs.push(p);
  }
  const deadline = Date.now() + 30_000;
  for (;;) {
    const h = etcdctl(join(cp1, "pki"), clientURLs.join(","), ["endpoint", "health"], "etcd/healthcheck-client");
    if (h.code === 0) break;
    if (Date.now() > deadline || procs.some((p) => p.exitCode !== null)) {
      throw new Error(`etcd did not become healthy: ${h.out}\n--- cp1 ---\n${logs.cp1?.slice(-2000)}\n--- cp2 ---\n${logs.cp2?.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 300));
  }
});

after(async () => {
  for (const p of procs) {
    if (p.pid && p.exitCode === null) {
      p.kill("SIGTERM");
      await new Promise((r) => {
        const t = setTimeout(() => (p.kill("SIGKILL"), r(undefined)), 5000);
        p.once("exit", () => (clearTimeout(t), r(undefined)));
      });
    }
  }
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

test("a two-member etcd cluster forms over the peer certificates", { skip: !existsSync(ETCD) && "no /usr/bin/etcd" }, () => {
  const r = etcdctl(join(cp1, "pki"), clientURLs[0]!, ["member", "list", "-w", "simple"]);
  assert.equal(r.code, 0, r.out);
  assert.match(r.out, /started, cp1, https:\/\/127\.0\.0\.1:\d+/);
  assert.match(r.out, /started, cp2, https:\/\/127\.0\.0\.1:\d+/);
});

test("etcdctl with apiserver-etcd-client writes on one member and reads on the other", { skip: !existsSync(ETCD) && "no /usr/bin/etcd" }, () => {
  const put = etcdctl(join(cp1, "pki"), clientURLs[0]!, ["put", "/kubeprov/test", "hello"]);
  assert.equal(put.code, 0, put.out);
  assert.match(put.out, /OK/);
  const get = etcdctl(join(cp2, "pki"), clientURLs[1]!, ["get", "/kubeprov/test", "--print-value-only"]);
  assert.equal(get.code, 0, get.out);
  assert.equal(get.out.trim(), "hello");
});

test("a client certificate from another etcd CA is refused", { skip: !existsSync(ETCD) && "no /usr/bin/etcd" }, () => {
  // Trust our CA for the server, but present the foreign cluster's client certificate.
  const r = spawnSync(
    ETCDCTL,
    ["--endpoints", clientURLs[0]!, "--cacert", join(cp1, "pki/etcd/ca.crt"), "--cert", join(foreign, "pki/apiserver-etcd-client.crt"), "--key", join(foreign, "pki/apiserver-etcd-client.key"), "--dial-timeout", "3s", "--command-timeout", "5s", "put", "/kubeprov/evil", "x"],
    { encoding: "utf8", env: { ...process.env, ETCDCTL_API: "3" } },
  );
  assert.notEqual(r.status, 0, r.stdout);
  assert.match(r.stdout + r.stderr, /bad certificate|certificate|deadline exceeded/i);
  const get = etcdctl(join(cp1, "pki"), clientURLs[0]!, ["get", "/kubeprov/evil", "--print-value-only"]);
  assert.equal(get.code, 0, get.out);
  assert.equal(get.out.trim(), "", "the foreign client wrote nothing");
  // And a client with no certificate at all is refused too.
  const anon = spawnSync(ETCDCTL, ["--endpoints", clientURLs[0]!, "--cacert", join(cp1, "pki/etcd/ca.crt"), "--dial-timeout", "3s", "--command-timeout", "5s", "get", "/kubeprov/test"], {
    encoding: "utf8",
    env: { ...process.env, ETCDCTL_API: "3" },
  });
  assert.notEqual(anon.status, 0);
});
