// Joining from the joining machine itself (`kubeprov join ENDPOINT …`): token discovery's checks
// (the JWS signature made with the token, the CA pinned by its hash), the cluster the join works
// on (the stored file plus this machine), the topology of such a run, kubelet.conf's file
// references, the printed lines, and the command line refusing bad input before any traffic.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parse as parseYaml } from "yaml";
import { clusterWithJoiningHost, parseCaHashes, parseEndpoint, verifyClusterInfo } from "../../provisioner/bootstrap/discovery.js";
import { clusterInfoKubeconfig } from "../../provisioner/bootstrap/manifests.js";
import { signDetachedJws } from "../../provisioner/bootstrap/jws.js";
import { caCertHash } from "../../provisioner/pki/hash.js";
import { inlineKubeconfigFiles } from "../../provisioner/bootstrap/api.js";
import { joinLines } from "../../provisioner/bootstrap/joincmd.js";
import { controlPlaneAddresses, firstControlPlane, isFirstControlPlane, joiningControlPlanes, workers } from "../../provisioner/plan/topology.js";
import type { Host } from "../../provisioner/engine/task.js";
import { UsageError } from "../../provisioner/errors.js";
import { cluster, runCli, tmp } from "./pki-support.js";

const TOKEN = "abcdef.0123456789abcdef";

function selfSignedCa(): Buffer {
  const dir = tmp("discovery");
  execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "ca.key"), "-out", join(dir, "ca.crt"), "-subj", "/CN=kubernetes", "-days", "1"], { stdio: "ignore" });
  return readFileSync(join(dir, "ca.crt"));
}

const ca = selfSignedCa();
const hash = caCertHash(ca);
const kubeconfig = clusterInfoKubeconfig(ca.toString("utf8"), "https://10.213.0.10:6443");
const signed = { data: { kubeconfig, "jws-kubeconfig-abcdef": signDetachedJws(kubeconfig, TOKEN) } };

test("endpoint and CA hash arguments: HOST:PORT (IPv6 in brackets), sha256:<64 hex>; anything else is a usage error naming it", () => {
  assert.deepEqual(parseEndpoint("10.213.0.10:6443"), { host: "10.213.0.10", port: 6443, hostPort: "10.213.0.10:6443" });
  assert.deepEqual(parseEndpoint("[fd00::1]:8443"), { host: "fd00::1", port: 8443, hostPort: "[fd00::1]:8443" });
  assert.equal(parseEndpoint("api.example.internal").port, 6443);
  for (const bad of ["", "https://10.0.0.1:6443", "10.0.0.1:99999", "a b:1"]) assert.throws(() => parseEndpoint(bad), (e: Error) => e instanceof UsageError && /join ENDPOINT/.test(e.message), bad);
  assert.deepEqual(parseCaHashes([`sha256:${"AB".repeat(32)}`]), [`sha256:${"ab".repeat(32)}`]);
  assert.throws(() => parseCaHashes([]), /needs --discovery-token-ca-cert-hash/);
  assert.throws(() => parseCaHashes(["sha256:abc"]), /--discovery-token-ca-cert-hash "sha256:abc": expected sha256: followed by 64/);
});

test("cluster-info is trusted only when signed with the token and its CA has the given hash", () => {
  assert.deepEqual(verifyClusterInfo(signed, TOKEN, [hash], "ep"), { server: "https://10.213.0.10:6443", ca });
  // Any of several hashes (a CA being rotated) will do.
  assert.equal(verifyClusterInfo(signed, TOKEN, [`sha256:${"0".repeat(64)}`, hash], "ep").server, "https://10.213.0.10:6443");
  assert.throws(() => verifyClusterInfo(signed, TOKEN, [`sha256:${"0".repeat(64)}`], "ep"), /the cluster at ep has CA sha256:[0-9a-f]{64}, not the --discovery-token-ca-cert-hash given/);
  assert.throws(() => verifyClusterInfo(signed, "abcdef.ffffffffffffffff", [hash], "ep"), /that this token's secret does not match: a wrong token/);
  assert.throws(() => verifyClusterInfo(signed, "zzzzzz.0123456789abcdef", [hash], "ep"), /not signed for token zzzzzz/);
  // A kubeconfig changed after signing (another CA slipped in) fails the signature.
  const forged = { data: { ...signed.data, kubeconfig: kubeconfig.replace("10.213.0.10", "10.213.0.66") } };
  assert.throws(() => verifyClusterInfo(forged, TOKEN, [hash], "ep"), /a wrong token/);
  assert.throws(() => verifyClusterInfo(undefined, TOKEN, [hash], "ep"), /has no kube-public\/cluster-info/);
  // The error never carries the token's secret.
  try {
    verifyClusterInfo(signed, "abcdef.ffffffffffffffff", [hash], "ep");
  } catch (e) {
    assert.doesNotMatch((e as Error).message, /ffffffffffffffff|0123456789abcdef/);
  }
});

test("the joining machine becomes the last host of the stored cluster file, reached locally; clashes are usage errors", () => {
  const stored = cluster();
  const c = clusterWithJoiningHost(stored, { name: "new1", address: "10.213.0.30", controlPlane: true });
  const last = c.spec.hosts.at(-1)!;
  assert.deepEqual([last.name, last.address, last.roles, last.connection], ["new1", "10.213.0.30", ["control-plane"], "local"]);
  assert.equal(c.spec.hosts.length, stored.spec.hosts.length + 1);
  const worker = clusterWithJoiningHost(stored, { name: "new2", address: "10.213.0.31", controlPlane: false }).spec.hosts.at(-1)!;
  assert.deepEqual(worker.roles, ["worker"]);
  // The stored file already lists this machine (same name and address): it is replaced, not doubled.
  const again = clusterWithJoiningHost(stored, { name: "w1", address: "10.213.0.20", controlPlane: false });
  assert.equal(again.spec.hosts.filter((h) => h.name === "w1").length, 1);
  assert.equal(again.spec.hosts.at(-1)!.connection, "local");
  assert.throws(() => clusterWithJoiningHost(stored, { name: "cp2", address: "10.213.0.99", controlPlane: true }), /already has a host named cp2 at 10\.213\.0\.11; .*--node-name/);
  assert.throws(() => clusterWithJoiningHost(stored, { name: "other", address: "10.213.0.11", controlPlane: true }), /host cp2 has this machine's address 10\.213\.0\.11/);
  const external = cluster({ hosts: [...stored.spec.hosts, { name: "e1", address: "10.213.0.40", roles: ["etcd"] }] } as never);
  assert.throws(() => clusterWithJoiningHost(external, { name: "new1", address: "10.213.0.30", controlPlane: true }), /etcd runs on hosts of its own/);
  assert.doesNotThrow(() => clusterWithJoiningHost(external, { name: "new1", address: "10.213.0.30", controlPlane: false }));
});

test("topology of a run that joins through the API: no first control plane among its hosts, every control plane joins, haproxy/keepalived still see the stored ones", () => {
  const c = clusterWithJoiningHost(cluster(), { name: "new1", address: "10.213.0.30", controlPlane: true });
  const self = { name: "new1", roles: ["control-plane"], nodeIP: "10.213.0.30" } as unknown as Host;
  const ctx = { cluster: c, hosts: [self], joinTo: { server: "https://10.213.0.10:6443", ca, token: TOKEN } };
  assert.throws(() => firstControlPlane(ctx), /joins the cluster at https:\/\/10\.213\.0\.10:6443: its first control plane is not one of this run's hosts/);
  assert.equal(isFirstControlPlane(ctx, self), false);
  assert.deepEqual(joiningControlPlanes(ctx).map((h) => h.name), ["new1"]);
  assert.deepEqual(workers(ctx), []);
  assert.deepEqual(controlPlaneAddresses(ctx).map((h) => `${h.name}=${h.nodeIP}`), ["cp1=10.213.0.10", "cp2=10.213.0.11", "new1=10.213.0.30"]);
  // Without joinTo nothing changes: the first control plane of the file, the others join.
  const plain = { cluster: cluster(), hosts: cluster().spec.hosts.map((h) => ({ ...h, nodeIP: h.address })) as unknown as Host[] };
  assert.equal(firstControlPlane(plain).name, "cp1");
  assert.deepEqual(joiningControlPlanes(plain).map((h) => h.name), ["cp2"]);
});

test("kubelet.conf's certificate files are read and embedded, so the client needs no path on this machine", async () => {
  const text = [
    "apiVersion: v1",
    "kind: Config",
    "clusters: [{name: k, cluster: {server: 'https://10.213.0.10:6443', certificate-authority-data: Q0E=}}]",
    "users: [{name: u, user: {client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem, client-key: /var/lib/kubelet/pki/kubelet-client-current.pem}}]",
  ].join("\n");
  const read: string[] = [];
  const out = await inlineKubeconfigFiles(text, async (p) => (read.push(p), Buffer.from("PEM")));
  const kc = parseYaml(out) as { users: { user: Record<string, string> }[]; clusters: { cluster: Record<string, string> }[] };
  assert.deepEqual(kc.users[0]!.user, { "client-certificate-data": "UEVN", "client-key-data": "UEVN" });
  assert.equal(kc.clusters[0]!.cluster["certificate-authority-data"], "Q0E=");
  assert.deepEqual(read, ["/var/lib/kubelet/pki/kubelet-client-current.pem", "/var/lib/kubelet/pki/kubelet-client-current.pem"]);
  await assert.rejects(inlineKubeconfigFiles(text, async () => undefined), /client-certificate \/var\/lib\/kubelet\/pki\/kubelet-client-current.pem is missing/);
  const embedded = "clusters: [{cluster: {server: s, certificate-authority-data: Q0E=}}]\nusers: [{user: {client-certificate-data: QQ==, client-key-data: Qg==}}]\n";
  assert.equal(await inlineKubeconfigFiles(embedded, async () => assert.fail("nothing to read")), embedded);
});

test("init's lines include the ones to run on the joining machine; the control plane's carries the key in the environment", () => {
  const key = "0f".repeat(32);
  const base = { endpoint: "10.213.5.2:6443", token: TOKEN, caHash: `sha256:${"a".repeat(64)}`, target: "--name demo" };
  const lines = joinLines({ ...base, certificateKey: key }).join("\n");
  assert.match(lines, /\n {2}kubeprov join 10\.213\.5\.2:6443 --token abcdef\.0123456789abcdef --discovery-token-ca-cert-hash sha256:a{64}\n/);
  assert.match(lines, new RegExp(`\\n  KUBEPROV_CERTIFICATE_KEY=${key} kubeprov join 10\\.213\\.5\\.2:6443 --token \\S+ --discovery-token-ca-cert-hash sha256:a{64} --control-plane\\n`));
  assert.doesNotMatch(joinLines(base).join("\n"), /--control-plane\n.*KUBEPROV_CERTIFICATE_KEY/);
  assert.doesNotMatch(joinLines({ ...base, certificateKey: key, externalEtcd: true }).join("\n"), /KUBEPROV_CERTIFICATE_KEY=\S+ kubeprov join 10/);
});

test("kubeprov join ENDPOINT refuses bad input with exit 2 before sending anything", () => {
  const hashArg = ["--discovery-token-ca-cert-hash", `sha256:${"a".repeat(64)}`];
  // 192.0.2.0/24 is TEST-NET-1: every case below fails before any connection is tried.
  const cases: Array<[string[], RegExp, Record<string, string>?]> = [
    [["join", "192.0.2.1:6443", ...hashArg], /join ENDPOINT needs --token/],
    [["join", "192.0.2.1:6443", "--token", TOKEN], /needs --discovery-token-ca-cert-hash/],
    [["join", "192.0.2.1:6443", "--token", "nope", ...hashArg], /token/i],
    [["join", "https://192.0.2.1", "--token", TOKEN, ...hashArg], /join ENDPOINT "https:\/\/192\.0\.2\.1": give the API server as HOST:PORT/],
    [["join", "192.0.2.1:6443", "--token", TOKEN, ...hashArg, "-f", "x.yaml"], /give no -f\/--name/],
    [["join", "192.0.2.1:6443", "--token", TOKEN, ...hashArg, "--control-plane"], /--control-plane: a control plane joining from its own machine .*certificate key/],
    [["join", "192.0.2.1:6443", "--token", TOKEN, ...hashArg, "--certificate-key", "0f".repeat(32)], /--certificate-key is for a control plane/],
    [["join", "192.0.2.1:6443", "--token", TOKEN, ...hashArg, "--control-plane"], /KUBEPROV_CERTIFICATE_KEY: a certificate key is 32 bytes/, { KUBEPROV_CERTIFICATE_KEY: "xyz" }],
    [["join", "192.0.2.1:6443", "--token", TOKEN, ...hashArg, "--node-name", "Bad_Name"], /--node-name "Bad_Name": a node name is a DNS-1123 label/],
    [["join", "192.0.2.1:6443", "--token", TOKEN, ...hashArg, "--apiserver-advertise-address", "x"], /--apiserver-advertise-address "x": not an IP address/],
    [["join", "--name", "demo", "--control-plane"], /--control-plane is for `kubeprov join ENDPOINT`/],
  ];
  for (const [args, want, env] of cases) {
    const r = runCliEnv(args, env);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
    assert.match(r.stderr, want, args.join(" "));
    assert.doesNotMatch(r.stderr, /0123456789abcdef/, "the token's secret is not echoed");
  }
});

function runCliEnv(args: string[], env?: Record<string, string>) {
  if (!env) return runCli(args);
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  Object.assign(process.env, env);
  try {
    return runCli(args);
  } finally {
    for (const [k, v] of Object.entries(saved)) if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
}
