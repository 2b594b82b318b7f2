// kubeadm's second way of sharing the control-plane CAs: `init --upload-certs` seals them into the
// Secret kube-system/kubeadm-certs under a certificate key, and `join --certificate-key` reads that
// Secret with a bootstrap token and opens it. Machines from `up --no-kubernetes`, a cluster file
// over SSH. A wrong key must change nothing on the joining host: that is also what shows the CAs
// came from the Secret and not from the first control plane (the orchestrator could read those).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { parse, stringify } from "yaml";
import { DEFAULT_KUBERNETES_VERSION } from "../../provisioner/constants.js";
import { bundleDir } from "../../provisioner/paths.js";
import { assertVotingMembers, dockerCleanup, kubectl, KUBEPROV, kubeprov, onNode, removeTestCluster, summaryOf, type Run, waitFor } from "../helpers/cluster-e2e.js";

const NAME = "kpt-upcerts";
const home = mkdtempSync(join(tmpdir(), "kpt-upcerts-"));
const file = join(home, "cluster.yaml");
const kubeconfig = join(home, "admin.conf");
const TOKEN = "abcdef.0123456789abcdef";
let hosts: Array<{ name: string; address: string; roles: string[] }> = [];
let base: { apiVersion: string; kind: string; metadata: { name: string }; spec: Record<string, unknown> };
let key = "";

/** The cluster file with the first n hosts as control planes, without HA (the endpoint is the first one). */
function writeFile(n: number): void {
  const spec: Record<string, unknown> = { ...base.spec, hosts: hosts.slice(0, n).map((h) => ({ ...h, roles: ["control-plane"] })) };
  delete spec.ha;
  delete spec.controlPlaneEndpoint;
  writeFileSync(file, stringify({ ...base, spec }));
}

/** kubeprov with the certificate key in its environment (never in argv). */
async function kubeprovWithKey(args: string[], certificateKey: string): Promise<Run> {
  const t0 = Date.now();
  const r = await execa(process.execPath, [KUBEPROV, ...args], {
    reject: false,
    timeout: 10 * 60_000,
    env: { KUBEPROV_HOME: home, KUBECONFIG: join(home, "kubeconfig"), CI: "1", KUBEPROV_CERTIFICATE_KEY: certificateKey },
    stdin: "ignore",
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), ms: Date.now() - t0 };
}

const PKI_FILES = "find /etc/kubernetes/pki -type f 2>/dev/null | sort";

/** The node's own kubelet cgroup root (kubeprov's per-node setting), read from its kubelet configuration. */
async function cgroupRootOf(node: string): Promise<string> {
  return (await onNode(node, "sed -n 's/^cgroupRoot: //p' /var/lib/kubelet/config.yaml")).stdout.trim();
}

/**
 * The bundle's kubeadm run on `node` with `args` and a JoinConfiguration on stdin (token and key
 * never in argv). `cgroupRoot`: the node's own kubelet cgroup root, given as a kubeadm patch
 * (kube-system/kubelet-config is shared by every node and holds none). Everything copied is removed after.
 */
async function kubeadmOnNode(node: string, args: string[], joinConfig: Record<string, unknown>, cgroupRoot: string, timeout: number) {
  const kubeadm = join(bundleDir(DEFAULT_KUBERNETES_VERSION), "bin", "kubeadm");
  await execa("docker", ["cp", kubeadm, `${node}:/tmp/kpt-kubeadm`]);
  const withPatches = cgroupRoot ? { ...joinConfig, patches: { directory: "/tmp/kpt-patches" } } : joinConfig;
  await execa("docker", ["exec", "-i", node, "sh", "-c", "umask 077 && cat > /tmp/kpt-join.yaml"], { input: stringify(withPatches) });
  if (cgroupRoot) await execa("docker", ["exec", "-i", node, "sh", "-c", "mkdir -p /tmp/kpt-patches && cat > /tmp/kpt-patches/kubeletconfiguration+merge.yaml"], { input: stringify({ cgroupRoot }) });
  try {
    return await execa("docker", ["exec", node, "/tmp/kpt-kubeadm", ...args, "--config", "/tmp/kpt-join.yaml"], { reject: false, timeout });
  } finally {
    await execa("docker", ["exec", node, "rm", "-rf", "/tmp/kpt-kubeadm", "/tmp/kpt-join.yaml", "/tmp/kpt-patches"], { reject: false });
  }
}

before(async () => {
  await dockerCleanup(NAME);
  const up = await kubeprov(home, ["up", "--name", NAME, "--nodes", "3", "--control-planes", "3", "--no-kubernetes", "--no-kubeconfig"]);
  assert.equal(up.code, 0, up.stderr.slice(-3000));
  base = parse(readFileSync(join(home, "clusters", NAME, "cluster.yaml"), "utf8"));
  hosts = base.spec.hosts as typeof hosts;
});

after(async () => {
  await removeTestCluster(home, NAME);
});

/** kubeadm's JoinConfiguration for a control plane (the token and the key travel in it, on stdin). */
function controlPlaneJoinConfig(endpoint: string, hash: string, key: string, node: { name: string; address: string }): Record<string, unknown> {
  return {
    apiVersion: "kubeadm.k8s.io/v1beta4",
    kind: "JoinConfiguration",
    discovery: { bootstrapToken: { apiServerEndpoint: endpoint, token: TOKEN, caCertHashes: [hash] } },
    controlPlane: { certificateKey: key, localAPIEndpoint: { advertiseAddress: node.address, bindPort: 6443 } },
    nodeRegistration: { name: node.name, ignorePreflightErrors: ["all"] },
  };
}

test("init --token … --token-ttl 0 --upload-certs: Secret kubeadm-certs owned by a 2 h token, the key printed in the join lines only", async () => {
  writeFile(1);
  const bad = await kubeprov(home, ["init", "-f", file, "--upload-certs", "--certificate-key", "abc123"]);
  assert.equal(bad.code, 2, bad.stderr);
  assert.match(bad.stderr, /--certificate-key/);

  const init = await kubeprov(home, ["init", "-f", file, "--token", TOKEN, "--token-ttl", "0", "--upload-certs"]);
  assert.equal(init.code, 0, init.stdout.slice(-3000) + init.stderr.slice(-3000));
  process.stderr.write(`# init --upload-certs: ${(init.ms / 1000).toFixed(1)} s\n`);
  const line = /kubeadm join (\S+) --token abcdef\.0123456789abcdef --discovery-token-ca-cert-hash sha256:[0-9a-f]{64} --control-plane --certificate-key ([0-9a-f]{64})\n/.exec(init.stdout);
  assert.ok(line, init.stdout);
  key = line[2];
  assert.match(init.stdout, new RegExp(`kubeadm join ${line[1].replace(/\./g, "\\.")} --token abcdef\\.0123456789abcdef --discovery-token-ca-cert-hash sha256:[0-9a-f]{64}\\n`));
  assert.ok(!init.stderr.includes(key), "the key is not in the log stream");

  const kc = await kubeprov(home, ["kubeconfig", "-f", file]);
  writeFileSync(kubeconfig, kc.stdout, { mode: 0o600 });
  const s = JSON.parse((await kubectl(kubeconfig, ["-n", "kube-system", "get", "secret", "kubeadm-certs", "-o", "json"])).stdout);
  assert.deepEqual(Object.keys(s.data).sort(), ["ca.crt", "ca.key", "etcd-ca.crt", "etcd-ca.key", "front-proxy-ca.crt", "front-proxy-ca.key", "sa.key", "sa.pub"]);
  const owner = s.metadata.ownerReferences[0];
  assert.match(owner.name, /^bootstrap-token-[a-z0-9]{6}$/);
  const token = JSON.parse((await kubectl(kubeconfig, ["-n", "kube-system", "get", "secret", owner.name, "-o", "json"])).stdout);
  assert.equal(token.metadata.uid, owner.uid);
  const ttlMs = Date.parse(Buffer.from(token.data.expiration, "base64").toString()) - Date.now();
  assert.ok(ttlMs > 110 * 60_000 && ttlMs <= 120 * 60_000, `owner token expires in ${ttlMs} ms`);
  // Only the bootstrap token group may read it (and an ordinary service account may not).
  const can = await kubectl(kubeconfig, ["auth", "can-i", "get", "secret/kubeadm-certs", "-n", "kube-system", "--as", "system:bootstrap:abcdef", "--as-group", "system:bootstrappers:kubeadm:default-node-token"]);
  assert.equal(can.stdout.trim(), "yes", can.stderr);
  const other = await kubectl(kubeconfig, ["auth", "can-i", "get", "secret/kubeadm-certs", "-n", "kube-system", "--as", "system:serviceaccount:default:default"]);
  assert.equal(other.stdout.trim(), "no");
  const list = await kubectl(kubeconfig, ["auth", "can-i", "list", "secrets", "-n", "kube-system", "--as", "system:bootstrap:abcdef", "--as-group", "system:bootstrappers:kubeadm:default-node-token"]);
  assert.equal(list.stdout.trim(), "no");
});

test("join with a wrong or malformed certificate key is refused and the joining host is untouched", async () => {
  assert.ok(key, "init ran");
  writeFile(2);
  const second = hosts[1].name;
  const before = await onNode(second, `${PKI_FILES}; ls /etc/kubernetes 2>/dev/null; systemctl is-active kubelet containerd 2>/dev/null`);
  const malformed = await kubeprovWithKey(["join", "-f", file], "0123");
  assert.equal(malformed.code, 2, malformed.stderr);
  assert.match(malformed.stderr, /KUBEPROV_CERTIFICATE_KEY/);
  assert.ok(!malformed.stderr.includes("0123"), "the value is not echoed");
  const wrongKey = key.replace(/^./, (c) => (c === "0" ? "1" : "0"));
  const wrong = await kubeprovWithKey(["join", "-f", file], wrongKey);
  assert.equal(wrong.code, 1, wrong.stdout.slice(-2000) + wrong.stderr);
  assert.match(wrong.stderr + wrong.stdout, /certificate key does not open Secret kube-system\/kubeadm-certs/);
  assert.ok(!(wrong.stderr + wrong.stdout).includes(wrongKey), "the key is not echoed");
  const afterWrong = await onNode(second, `${PKI_FILES}; ls /etc/kubernetes 2>/dev/null; systemctl is-active kubelet containerd 2>/dev/null`);
  assert.equal(afterWrong.stdout, before.stdout, "nothing changed on the joining host");
  assert.equal((await onNode(second, PKI_FILES)).stdout.trim(), "", "no file under /etc/kubernetes/pki");
});

test("join with the certificate key (in the environment): the CAs from the Secret, own leaves, etcd of 2 voting members", async () => {
  assert.ok(key, "init ran");
  writeFile(2);
  const join = await kubeprovWithKey(["join", "-f", file, "--token", TOKEN], key);
  assert.equal(join.code, 0, join.stdout.slice(-3000) + join.stderr.slice(-3000));
  process.stderr.write(`# join --certificate-key of a control plane: ${(join.ms / 1000).toFixed(1)} s\n`);
  const [first, second] = [hosts[0].name, hosts[1].name];
  await assertVotingMembers(first, [first, second]);
  const sums = "cd /etc/kubernetes/pki && sha256sum ca.crt ca.key front-proxy-ca.crt front-proxy-ca.key etcd/ca.crt etcd/ca.key sa.key sa.pub";
  assert.equal((await onNode(second, sums)).stdout, (await onNode(first, sums)).stdout);
  const modes = (await onNode(second, "cd /etc/kubernetes/pki && stat -c '%a %n' ca.crt ca.key etcd/ca.key sa.key apiserver.crt apiserver.key")).stdout.trim().split("\n");
  assert.deepEqual(modes, ["644 ca.crt", "600 ca.key", "600 etcd/ca.key", "600 sa.key", "644 apiserver.crt", "600 apiserver.key"]);
  // Its own leaves: the API server certificate names its own address.
  const san = await onNode(second, "openssl x509 -in /etc/kubernetes/pki/apiserver.crt -noout -ext subjectAltName");
  assert.match(san.stdout, new RegExp(hosts[1].address.replace(/\./g, "\\.")));
  const ms = await waitFor(async () => (await kubectl(kubeconfig, ["get", "node", second, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"])).stdout === "True", 120_000, 2000);
  assert.notEqual(ms, -1, `${second} not Ready within 120 s`);
});

test("init --upload-certs again with the same key changes nothing; init phase upload-certs re-seals under a new key", async () => {
  assert.ok(key, "init ran");
  writeFile(1);
  const again = await kubeprovWithKey(["init", "-f", file, "--upload-certs", "-o", "json"], key);
  assert.equal(again.code, 0, again.stderr.slice(-2000));
  assert.equal(summaryOf(again.stdout)?.changed, 0, again.stdout.split("\n").filter((l) => l.includes('"status":"changed"')).join("\n"));

  const phase = await kubeprov(home, ["init", "phase", "upload-certs", "-f", file, "--upload-certs"]);
  assert.equal(phase.code, 0, phase.stdout.slice(-2000) + phase.stderr.slice(-2000));
  const fresh = /--control-plane --certificate-key ([0-9a-f]{64})\n/.exec(phase.stdout)?.[1];
  assert.ok(fresh && fresh !== key, phase.stdout);
  writeFile(2);
  const old = await kubeprovWithKey(["join", "-f", file, "--dry-run"], key);
  assert.equal(old.code, 1, old.stdout.slice(-2000));
  assert.match(old.stderr + old.stdout, /does not open/);
  const now = await kubeprovWithKey(["join", "-f", file, "--dry-run"], fresh);
  assert.equal(now.code, 0, now.stdout.slice(-2000) + now.stderr.slice(-2000));
  key = fresh;
});

test("kubeadm's own download-certs (kubeadm join phase control-plane-prepare download-certs) opens the Secret kubeprov wrote", async () => {
  assert.ok(key, "init ran");
  const [first, third] = [hosts[0], hosts[2]];
  const endpoint = `${first.address}:6443`;
  const hash = /--discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})/.exec((await kubeprov(home, ["token", "create", "-f", file, "--ttl", "10m", "--print-join-command"])).stdout)?.[1];
  assert.ok(hash, "token create printed a CA hash");
  // kubeadm join reads kube-system/kubeadm-config and kubelet-config before any phase: kubeprov's
  // upload-config phase wrote them, readable by the bootstrap token group through kubeadm's Roles.
  const cc = parse(JSON.parse((await kubectl(kubeconfig, ["-n", "kube-system", "get", "configmap", "kubeadm-config", "-o", "json"])).stdout).data.ClusterConfiguration);
  assert.equal(cc.controlPlaneEndpoint, endpoint);
  for (const cm of ["kubeadm-config", "kubelet-config"]) {
    const can = await kubectl(kubeconfig, ["auth", "can-i", "get", `configmap/${cm}`, "-n", "kube-system", "--as", "system:bootstrap:abcdef", "--as-group", "system:bootstrappers:kubeadm:default-node-token"]);
    assert.equal(can.stdout.trim(), "yes", `${cm}: ${can.stderr}`);
  }
  // The token and the key travel in a JoinConfiguration on stdin, not on a command line.
  const joinConfig = controlPlaneJoinConfig(endpoint, hash, key, third);
  const r = await kubeadmOnNode(third.name, ["join", "phase", "control-plane-prepare", "download-certs", "-v=5"], joinConfig, "", 120_000);
  assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`.slice(-4000));
  const sums = "cd /etc/kubernetes/pki && sha256sum ca.crt ca.key front-proxy-ca.crt front-proxy-ca.key etcd/ca.crt etcd/ca.key sa.key sa.pub";
  assert.equal((await onNode(third.name, sums)).stdout, (await onNode(first.name, sums)).stdout);
});

test("a worker joined by kubeadm with the printed line's token and CA hash becomes Ready", async () => {
  assert.ok(key, "init ran");
  const [first, third] = [hosts[0], hosts[2]];
  const endpoint = `${first.address}:6443`;
  // The machine is prepared the way a kubeadm user's packages would (runtime, binaries, images, a
  // kubelet unit reading kubeadm's file names) by kubeprov's own worker join; then its kubelet
  // identity is taken away, so that kubeadm's discovery and TLS bootstrap make it a Node again.
  await onNode(third.name, "rm -rf /etc/kubernetes/pki");
  const spec: Record<string, unknown> = { ...base.spec, hosts: [...hosts.slice(0, 2).map((h) => ({ ...h, roles: ["control-plane"] })), { ...third, roles: ["worker"] }] };
  delete spec.ha;
  delete spec.controlPlaneEndpoint;
  writeFileSync(file, stringify({ ...base, spec }));
  const prepared = await kubeprov(home, ["join", "-f", file]);
  assert.equal(prepared.code, 0, prepared.stdout.slice(-2000) + prepared.stderr.slice(-2000));
  const cgroupRoot = await cgroupRootOf(third.name);
  await onNode(third.name, "systemctl stop kubelet; rm -rf /etc/kubernetes/kubelet.conf /etc/kubernetes/bootstrap-kubelet.conf /etc/kubernetes/pki /var/lib/kubelet/pki");
  assert.equal((await kubectl(kubeconfig, ["delete", "node", third.name])).code, 0);

  const printed = await kubeprov(home, ["token", "create", "-f", file, "--ttl", "10m", "--print-join-command"]);
  const line = /kubeadm join (\S+) --token ([a-z0-9]{6}\.[a-z0-9]{16}) --discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})/.exec(printed.stdout);
  assert.ok(line, printed.stdout);
  assert.equal(line[1], endpoint);
  // The printed line's values, in a JoinConfiguration on stdin (the token stays out of argv).
  const joinConfig = {
    apiVersion: "kubeadm.k8s.io/v1beta4",
    kind: "JoinConfiguration",
    discovery: { bootstrapToken: { apiServerEndpoint: line[1], token: line[2], caCertHashes: [line[3]] } },
    nodeRegistration: { name: third.name, ignorePreflightErrors: ["all"] },
  };
  const r = await kubeadmOnNode(third.name, ["join", "-v=2"], joinConfig, cgroupRoot, 300_000);
  process.stderr.write(`# kubeadm join of a worker: exit ${r.exitCode}\n`);
  assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`.slice(-4000));
  const ms = await waitFor(async () => (await kubectl(kubeconfig, ["get", "node", third.name, "-o", "jsonpath={.status.conditions[?(@.type=='Ready')].status}"])).stdout === "True", 150_000, 2000);
  const diag = ms === -1 ? (await onNode(third.name, "journalctl -u kubelet --no-pager | tail -30")).stdout : "";
  assert.notEqual(ms, -1, `${third.name} not Ready within 150 s after kubeadm join\n${diag}`);
  process.stderr.write(`# kubeadm-joined worker Ready ${(ms / 1000).toFixed(1)} s after kubeadm join returned\n`);
  // The kubelet runs kube-system/kubelet-config as kubeprov wrote it, with the node's own cgroup root from the patch.
  const shared = parse(JSON.parse((await kubectl(kubeconfig, ["-n", "kube-system", "get", "configmap", "kubelet-config", "-o", "json"])).stdout).data.kubelet);
  assert.equal(shared.cgroupRoot, undefined, "no per-node cgroup root in the shared kubelet-config");
  const onDisk = parse((await onNode(third.name, "cat /var/lib/kubelet/config.yaml")).stdout);
  assert.equal(onDisk.cgroupRoot, cgroupRoot);
  assert.equal(onDisk.clusterDomain, shared.clusterDomain);
});

test("a control plane joined by the real kubeadm join --control-plane: API server ready, a voting etcd member, kubeprov status sees it", async () => {
  assert.ok(key, "init ran");
  const [first, second, third] = hosts;
  const endpoint = `${first.address}:6443`;
  // The kubeadm-joined worker becomes a control plane: kubeadm's images are there as a kubeadm
  // user's `kubeadm config images pull` would leave them (here from the bundle's archives), and its
  // kubelet identity is taken away again (not `kubeadm reset`: it empties /var/lib/kubelet, where
  // kubeprov keeps the pods' resolv.conf).
  const images = ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"];
  for (const image of images) {
    await execa("docker", ["cp", join(bundleDir(DEFAULT_KUBERNETES_VERSION), "images", `${image}.tar`), `${third.name}:/tmp/kpt-${image}.tar`]);
    const imported = await onNode(third.name, `ctr -n k8s.io images import /tmp/kpt-${image}.tar; rc=$?; rm -f /tmp/kpt-${image}.tar; exit $rc`);
    assert.equal(imported.code, 0, imported.stderr);
  }
  const cgroupRoot = await cgroupRootOf(third.name);
  await onNode(third.name, "systemctl stop kubelet; rm -rf /etc/kubernetes/kubelet.conf /etc/kubernetes/bootstrap-kubelet.conf /etc/kubernetes/pki /var/lib/kubelet/pki");
  assert.equal((await kubectl(kubeconfig, ["delete", "node", third.name])).code, 0);
  const hash = /--discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})/.exec((await kubeprov(home, ["token", "create", "-f", file, "--ttl", "10m", "--print-join-command"])).stdout)?.[1];
  assert.ok(hash, "token create printed a CA hash");
  const joinConfig = controlPlaneJoinConfig(endpoint, hash, key, third);
  const t0 = Date.now();
  const r = await kubeadmOnNode(third.name, ["join", "-v=2"], joinConfig, cgroupRoot, 400_000);
  process.stderr.write(`# kubeadm join --control-plane: exit ${r.exitCode} after ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  const diag = r.exitCode === 0 ? "" : (await onNode(third.name, "journalctl -u kubelet --no-pager | tail -20; crictl ps -a 2>/dev/null | tail -8")).stdout;
  assert.equal(r.exitCode, 0, `${r.stdout}\n${r.stderr}`.slice(-5000) + "\n" + diag);

  // Its own API server answers /readyz (through the admin credentials, on its own address).
  const ready = await waitFor(async () => (await kubectl(kubeconfig, ["--server", `https://${third.address}:6443`, "get", "--raw", "/readyz"])).stdout.trim() === "ok", 60_000, 1000);
  assert.notEqual(ready, -1, `${third.name}'s API server not ready`);
  // etcd: three started voting members, the kubeadm-made one among them.
  await assertVotingMembers(first.name, [first.name, second.name, third.name]);
  const manifests = (await onNode(third.name, "ls /etc/kubernetes/manifests")).stdout.trim().split("\n");
  assert.deepEqual(manifests, ["etcd.yaml", "kube-apiserver.yaml", "kube-controller-manager.yaml", "kube-scheduler.yaml"]);
  const labels = JSON.parse((await kubectl(kubeconfig, ["get", "node", third.name, "-o", "jsonpath={.metadata.labels}"])).stdout);
  assert.ok("node-role.kubernetes.io/control-plane" in labels, JSON.stringify(labels));

  // kubeprov, given a cluster file that names it a control plane, sees it as one of its own.
  writeFile(3);
  const st = await kubeprov(home, ["status", "-f", file, "-o", "json"], 120_000);
  assert.equal(st.code, 0, st.stdout.slice(-2000) + st.stderr.slice(-2000));
  const doc = JSON.parse(st.stdout) as { hosts: Array<{ name: string; state: string; components?: Record<string, { health: string }>; etcdMembers?: Array<{ name: string }> }> };
  const seen = doc.hosts.find((h) => h.name === third.name);
  assert.ok(seen, st.stdout);
  assert.equal(seen.state, "Running", JSON.stringify(seen));
  process.stderr.write(`# kubeprov status of the kubeadm-joined control plane: ${JSON.stringify(seen.components)}\n`);
  for (const c of ["etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"]) assert.equal(seen.components?.[c]?.health, "ok", JSON.stringify(seen));
  assert.deepEqual((seen.etcdMembers ?? []).map((m) => m.name).sort(), [first.name, second.name, third.name].sort());
});

test("deleting the owner token deletes kubeadm-certs (garbage collector)", async () => {
  const s = JSON.parse((await kubectl(kubeconfig, ["-n", "kube-system", "get", "secret", "kubeadm-certs", "-o", "json"])).stdout);
  const owner = s.metadata.ownerReferences[0].name as string;
  const del = await kubectl(kubeconfig, ["-n", "kube-system", "delete", "secret", owner]);
  assert.equal(del.code, 0, del.stderr);
  const ms = await waitFor(async () => /NotFound/.test((await kubectl(kubeconfig, ["-n", "kube-system", "get", "secret", "kubeadm-certs"])).stderr), 60_000, 1000);
  assert.notEqual(ms, -1, "kubeadm-certs still there 60 s after its owner was deleted");
  process.stderr.write(`# kubeadm-certs gone ${(ms / 1000).toFixed(1)} s after its owner token\n`);
  // And a join with the key now says why.
  writeFile(2);
  const late = await kubeprovWithKey(["join", "-f", file, "--dry-run"], key);
  assert.equal(late.code, 1);
  assert.match(late.stderr + late.stdout, /kubeadm-certs not found/);
});
