// `kubeprov join ENDPOINT --token … --discovery-token-ca-cert-hash … [--control-plane]` run on the
// joining machine itself, with nothing but the line `init` printed: no cluster file, no SSH, no
// orchestrator. Four machines made with the docker driver's plan (systemd, containerd), kubeprov
// bind-mounted read-only into each (as in the none-driver test). The first becomes the cluster
// with `up --driver none`; `init --upload-certs` there prints the lines; two more machines join as
// control planes with the printed line (the certificate key in the environment), the last as a
// worker. The cluster file the cluster stores lists only the first machine, so the third machine's
// etcd must take its member list from etcd, not from that file.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { removeNodeCgroups } from "../../provisioner/drivers/docker/cgroups.js";
import { kubeprovInside, provisionMachinesWithKubeprov } from "../helpers/machines-with-kubeprov.js";
import { assertVotingMembers, dockerCleanup, KUBECTL, onNode, summaryOf, waitFor } from "../helpers/cluster-e2e.js";

/** The docker-driver machines (no Kubernetes from the driver: kubeprov runs inside them). */
const MACHINES = `kpt-jh${process.pid % 10000}`;
const [M1, M2, M3, M4] = [`${MACHINES}-control-plane`, `${MACHINES}-control-plane2`, `${MACHINES}-control-plane3`, `${MACHINES}-worker`];
/** The cluster made inside the first machine. */
const NAME = "kpt-joinhere";
const home = mkdtempSync(join(tmpdir(), "kpt-joinhere-"));
const kubeconfig = join(home, "admin.conf");
let workerLine = "";
let controlPlaneLine = "";
let key = "";

const inside = kubeprovInside;

/** The words of a printed join line after `kubeprov join` (the line as a user pastes it). */
function joinArgs(line: string): string[] {
  const words = line.trim().split(/\s+/);
  return words.slice(words.indexOf("join") + 1);
}

const NOTHING_WRITTEN = "ls -A /etc/kubernetes /var/lib/kubelet /var/lib/etcd 2>/dev/null; systemctl is-active kubelet 2>/dev/null; true";

async function kubectlOut(args: string[]): Promise<string> {
  const r = await execa(KUBECTL, ["--kubeconfig", kubeconfig, ...args], { reject: false, timeout: 30_000 });
  return String(r.stdout);
}

async function nodeReady(node: string, limitMs: number): Promise<boolean> {
  return (await waitFor(async () => (await kubectlOut(["get", "node", node, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"])) === "True", limitMs)) !== -1;
}

before(async () => {
  await dockerCleanup(MACHINES);
  process.env.KUBEPROV_HOME = join(home, "outer");
  await provisionMachinesWithKubeprov(MACHINES, 4, 3);
  const up = await inside(M1, ["up", "--driver", "none", "--name", NAME]);
  assert.equal(up.code, 0, `${up.stderr.slice(-3000)}\n${up.stdout.slice(-3000)}`);
  const kc = await onNode(M1, `cat /root/kubeprov/clusters/${NAME}/admin.conf`);
  assert.equal(kc.code, 0, kc.stderr);
  writeFileSync(kubeconfig, kc.stdout, { mode: 0o600 });
});

after(async () => {
  await dockerCleanup(MACHINES);
  // The kubelets inside the machines put their pods' cgroups under this machine's /sys/fs/cgroup/*/kubeprov/<cluster>.
  removeNodeCgroups(NAME);
  rmSync(home, { recursive: true, force: true });
});

test("init --upload-certs prints the join lines to run on a new machine: a worker's, and a control plane's with the key in the environment", async () => {
  const init = await inside(M1, ["init", "--name", NAME, "--upload-certs"]);
  assert.equal(init.code, 0, init.stderr.slice(-3000));
  const lines = init.stdout.split("\n");
  controlPlaneLine = lines.find((l) => /KUBEPROV_CERTIFICATE_KEY=\S+ kubeprov join \S+:6443 --token/.test(l)) ?? "";
  workerLine = lines.find((l) => /^\s*kubeprov join \S+:6443 --token \S+ --discovery-token-ca-cert-hash sha256:[0-9a-f]{64}\s*$/.test(l)) ?? "";
  assert.ok(workerLine, init.stdout);
  assert.match(controlPlaneLine, /--discovery-token-ca-cert-hash sha256:[0-9a-f]{64} --control-plane$/, init.stdout);
  key = /KUBEPROV_CERTIFICATE_KEY=([0-9a-f]{64})/.exec(controlPlaneLine)?.[1] ?? "";
  assert.equal(key.length, 64);
});

test("bad join lines are refused before anything changes on the machine: wrong CA hash and malformed key exit 2, a wrong key exits 1", async () => {
  const before = await onNode(M2, NOTHING_WRITTEN);
  const args = joinArgs(workerLine);
  const wrongHash = args.map((a) => (a.startsWith("sha256:") ? `sha256:${"0".repeat(64)}` : a));
  const r1 = await inside(M2, ["join", ...wrongHash]);
  assert.equal(r1.code, 2, r1.stdout + r1.stderr);
  assert.match(r1.stderr, /has CA sha256:[0-9a-f]{64}, not the --discovery-token-ca-cert-hash given/);

  const r2 = await inside(M2, ["join", ...args, "--control-plane"], { KUBEPROV_CERTIFICATE_KEY: "abc" });
  assert.equal(r2.code, 2, r2.stdout + r2.stderr);
  assert.match(r2.stderr, /KUBEPROV_CERTIFICATE_KEY: a certificate key is 32 bytes/);
  assert.doesNotMatch(r2.stderr, /abc/);

  const r3 = await inside(M2, ["join", ...args, "--control-plane"]);
  assert.equal(r3.code, 2, r3.stdout + r3.stderr);
  assert.match(r3.stderr, /--control-plane: .*certificate key/);

  const wrongKey = "f".repeat(64);
  const r4 = await inside(M2, ["join", ...args, "--control-plane"], { KUBEPROV_CERTIFICATE_KEY: wrongKey });
  assert.equal(r4.code, 1, r4.stdout + r4.stderr);
  assert.match(r4.stdout + r4.stderr, /the certificate key does not open Secret kube-system\/kubeadm-certs/);
  assert.doesNotMatch(r4.stdout + r4.stderr, new RegExp(`${wrongKey}|${key}`));

  assert.equal((await onNode(M2, NOTHING_WRITTEN)).stdout, before.stdout, "the machine changed");
});

test("two machines join as control planes with the printed line: Ready, 3 voting etcd members, each API server ready on its own address, one CA", async () => {
  for (const m of [M2, M3]) {
    const r = await inside(m, ["join", ...joinArgs(controlPlaneLine)], { KUBEPROV_CERTIFICATE_KEY: key });
    assert.equal(r.code, 0, `${m}: ${r.stderr.slice(-3000)}\n${r.stdout.slice(-3000)}`);
    process.stderr.write(`# ${m} joined as a control plane from its own machine in ${(r.ms / 1000).toFixed(1)} s\n`);
    assert.match(r.stdout, /This machine joined the cluster at https:\/\/\S+ as a control plane/);
  }
  for (const m of [M1, M2, M3]) assert.ok(await nodeReady(m, 120_000), `${m} not Ready`);
  // M3's etcd names the members etcd held (M1 and M2), though the stored cluster file lists only M1.
  await assertVotingMembers(M1, [M1, M2, M3]);
  const initial = await onNode(M3, "grep -o -- '--initial-cluster=[^ \"]*' /etc/kubernetes/manifests/etcd.yaml");
  assert.match(initial.stdout, new RegExp(`${M2}=https://`), initial.stdout);
  for (const m of [M2, M3]) {
    const ip = (await execa("docker", ["inspect", "-f", "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", m])).stdout.trim();
    const readyz = await onNode(m, `/usr/local/bin/kubectl --kubeconfig /etc/kubernetes/admin.conf --server https://${ip}:6443 get --raw /readyz`);
    assert.equal(readyz.stdout.trim(), "ok", readyz.stderr);
    // Its own leaf carries its own address and chains to the cluster's one CA.
    const cert = await onNode(m, "openssl x509 -in /etc/kubernetes/pki/apiserver.crt -noout -ext subjectAltName && openssl verify -CAfile /etc/kubernetes/pki/ca.crt /etc/kubernetes/pki/apiserver.crt");
    assert.match(cert.stdout, new RegExp(`IP Address:${ip.replace(/\./g, "\\.")}`), cert.stdout);
    assert.match(cert.stdout, /apiserver\.crt: OK/);
    const sameCa = await onNode(m, "sha256sum < /etc/kubernetes/pki/ca.crt");
    assert.equal(sameCa.stdout, (await onNode(M1, "sha256sum < /etc/kubernetes/pki/ca.crt")).stdout);
  }
});

test("a machine joins as a worker with the printed line and becomes Ready; running the line again changes nothing", async () => {
  const r = await inside(M4, ["join", ...joinArgs(workerLine)]);
  assert.equal(r.code, 0, `${r.stderr.slice(-3000)}\n${r.stdout.slice(-3000)}`);
  process.stderr.write(`# ${M4} joined as a worker from its own machine in ${(r.ms / 1000).toFixed(1)} s\n`);
  assert.ok(await nodeReady(M4, 120_000), `${M4} not Ready`);
  const labels = await kubectlOut(["get", "node", M4, "-o", "jsonpath={.metadata.labels}"]);
  assert.doesNotMatch(labels, /node-role.kubernetes.io\/control-plane/);
  const reruns: Array<[string, string, Record<string, string>]> = [
    [M4, workerLine, {}],
    [M2, controlPlaneLine, { KUBEPROV_CERTIFICATE_KEY: key }],
  ];
  for (const [m, line, env] of reruns) {
    const again = await inside(m, ["join", ...joinArgs(line), "-o", "json"], env);
    assert.equal(again.code, 0, again.stderr.slice(-3000));
    const s = summaryOf(again.stdout);
    assert.equal(s?.changed, 0, `${m}: ${again.stdout.split("\n").filter((l) => l.includes('"status":"changed"')).join("\n").slice(-3000)}`);
    assert.equal(s?.failed, 0);
  }
});
