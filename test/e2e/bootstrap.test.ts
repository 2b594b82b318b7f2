// Bootstrap and addons on a real single-node cluster (docker driver, real binaries): cluster-info
// readable without credentials and signed for the token, the node labelled, untainted (it is a
// worker too) and Ready through the bridge CNI, a pod from a locally built image reaching the API
// server through the `kubernetes` Service and resolving its name through CoreDNS, tokens created,
// listed and deleted, a bad token refused with exit 2 before anything changes, and a re-run of
// the bootstrap and addons phases changing nothing.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { request } from "node:https";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { parse as parseYaml } from "yaml";
import { DEFAULT_KUBERNETES_VERSION } from "../../provisioner/constants.js";
import { bundleDir } from "../../provisioner/paths.js";
import { buildFixtureImage } from "../helpers/cluster-e2e.js";
import { verifyDetachedJws } from "../../provisioner/bootstrap/jws.js";
import { dockerCleanup, kubeprov, makeCliEnv } from "../helpers/kubeprov-cli.js";

const NAME = process.env.KPT_BOOT_NAME ?? `kpt-boot${process.pid % 10000}`;
const NODE = `${NAME}-control-plane`;
const PROBE_IMAGE = `kpt-probe:${NAME}`;
const env = makeCliEnv("kpt-boot-");
const work = mkdtempSync(join(tmpdir(), "kpt-boot-work-"));
const kubeconfigFile = join(work, "admin.conf");
const KUBECTL = join(bundleDir(DEFAULT_KUBERNETES_VERSION), "bin", "kubectl");

let nodeIP = "";
let caPem = "";

async function kubectl(args: string[], input?: string) {
  const r = await execa(KUBECTL, ["--kubeconfig", kubeconfigFile, ...args], { reject: false, ...(input !== undefined ? { input } : {}) });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

async function kubectlJson<T = any>(args: string[]): Promise<T> {
  const r = await kubectl([...args, "-o", "json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as T;
}

/** GET over HTTPS from this machine to the node with the cluster CA and NO client credentials. */
function anonymousGet(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: nodeIP, port: 6443, path, method: "GET", ca: caPem, servername: "kubernetes", timeout: 10_000 }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end();
  });
}

async function tokens(): Promise<{ token: string; id: string; ttl: string; expires: string | null; description: string; usages: string[] }[]> {
  const r = await kubeprov(env, ["token", "list", "--name", NAME, "-o", "json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout);
}

async function clusterInfo(): Promise<Record<string, string>> {
  const r = await anonymousGet("/api/v1/namespaces/kube-public/configmaps/cluster-info");
  assert.equal(r.status, 200, r.body);
  return JSON.parse(r.body).data;
}

async function waitUntil<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutMs / 1000} s${last ? ` (${(last as Error).message})` : ""}`);
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function summaryOf(stdout: string): { changed: number; results?: { task: string; status: string }[] } {
  const events = stdout.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
  const s = events.find((e) => e.type === "summary");
  assert.ok(s, `no summary event in:\n${stdout.slice(-2000)}`);
  return { ...s, results: events.filter((e) => e.type === "task") };
}

describe(`bootstrap and addons on a single-node cluster (${NAME})`, { timeout: 25 * 60_000 }, () => {
  before(async () => {
    // The probe image: a static Go program in an image built here (nothing is pulled).
    await buildFixtureImage("probe", PROBE_IMAGE, NAME, work);

    const t0 = Date.now();
    const up = await kubeprov(env, ["up", "--name", NAME, "-o", "json"]);
    console.log(`# up --name ${NAME}: exit ${up.code} in ${Date.now() - t0} ms`);
    assert.equal(up.code, 0, `up failed:\n${up.stderr}\n${up.stdout.slice(-4000)}`);
    const s = summaryOf(up.stdout);
    const mine = (s.results ?? []).filter((r) => /^(bootstrap-rbac|upload-config|mark-control-plane|bootstrap-token|cluster-info|addons)\//.test(r.task));
    for (const r of mine) console.log(`#   ${r.task}: ${r.status} ${(r as { durationMs?: number }).durationMs ?? ""} ms`);

    const kc = await kubeprov(env, ["kubeconfig", "--name", NAME]);
    assert.equal(kc.code, 0, kc.stderr);
    writeFileSync(kubeconfigFile, kc.stdout, { mode: 0o600 });
    const parsed = parseYaml(kc.stdout);
    caPem = Buffer.from(parsed.clusters[0].cluster["certificate-authority-data"], "base64").toString();
    nodeIP = new URL(parsed.clusters[0].cluster.server).hostname;
    assert.ok(nodeIP.startsWith("10.213."), `the API server of a test cluster is on a test network (got ${nodeIP})`);
  });

  after(async () => {
    await kubeprov(env, ["delete", "--name", NAME]).catch(() => undefined);
    await dockerCleanup(NAME);
    await execa("docker", ["rmi", "-f", PROBE_IMAGE], { reject: false });
    env.cleanup();
    rmSync(work, { recursive: true, force: true });
  });

  test("cluster-info is readable without credentials and its JWS verifies with the token", async () => {
    // Anonymous really is anonymous: the same client may not read Secrets.
    const secrets = await anonymousGet("/api/v1/namespaces/kube-system/secrets");
    assert.ok(secrets.status === 401 || secrets.status === 403, `anonymous secrets list: ${secrets.status}`);
    const data = await clusterInfo();
    const kc = parseYaml(data.kubeconfig);
    assert.equal(kc.clusters[0].cluster.server, `https://${nodeIP}:6443`);
    assert.equal(Buffer.from(kc.clusters[0].cluster["certificate-authority-data"], "base64").toString(), caPem);
    const list = await tokens();
    assert.ok(list.length >= 1, "init made a bootstrap token");
    for (const t of list) {
      assert.match(t.token, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
      const jws = data[`jws-kubeconfig-${t.id}`];
      assert.ok(jws, `cluster-info has a signature for token ${t.id}`);
      assert.equal(verifyDetachedJws(jws, data.kubeconfig, t.token), true, `JWS of ${t.id} verifies`);
      assert.equal(verifyDetachedJws(jws, data.kubeconfig, `${t.id}.${"0".repeat(16)}`), false);
    }
    const initToken = list[0];
    assert.ok(initToken.expires, "the default token expires (24 h)");
    const hours = (Date.parse(initToken.expires!) - Date.now()) / 3_600_000;
    assert.ok(hours > 23 && hours <= 24, `expires in ${hours.toFixed(2)} h`);
  });

  test("kubeadm's own discovery (kubeadm join --dry-run on the node) accepts cluster-info, its JWS and the CA hash", async () => {
    const kubeadm = join(bundleDir(DEFAULT_KUBERNETES_VERSION), "bin", "kubeadm");
    const [t] = await tokens();
    const printed = await kubeprov(env, ["token", "create", "--name", NAME, "--ttl", "10m", "--print-join-command"]);
    assert.equal(printed.code, 0, printed.stderr);
    const hash = /--discovery-token-ca-cert-hash (sha256:[0-9a-f]{64})/.exec(printed.stdout)?.[1];
    assert.ok(hash, printed.stdout);
    await execa("docker", ["cp", kubeadm, `${NODE}:/tmp/kpt-kubeadm`]);
    // The token travels in a JoinConfiguration on stdin, not on a command line.
    const joinConfig = [
      "apiVersion: kubeadm.k8s.io/v1beta4",
      "kind: JoinConfiguration",
      "discovery:",
      "  bootstrapToken:",
      `    apiServerEndpoint: "${nodeIP}:6443"`,
      `    token: "${t.token}"`,
      `    caCertHashes: ["${hash}"]`,
      "nodeRegistration:",
      "  ignorePreflightErrors: [all]",
      "",
    ].join("\n");
    await execa("docker", ["exec", "-i", NODE, "sh", "-c", "umask 077 && cat > /tmp/kpt-join.yaml"], { input: joinConfig });
    // Discovery runs before anything is written; the join stops later because this node exists.
    const r = await execa("docker", ["exec", NODE, "/tmp/kpt-kubeadm", "join", "--config", "/tmp/kpt-join.yaml", "--dry-run", "-v=5"], {
      reject: false,
      timeout: 90_000,
    });
    await execa("docker", ["exec", NODE, "rm", "-f", "/tmp/kpt-kubeadm", "/tmp/kpt-join.yaml"], { reject: false });
    const out = `${r.stdout}\n${r.stderr}`;
    assert.match(out, /Cluster info signature and contents are valid and TLS certificate validates against pinned roots/, out.slice(-3000));
  });

  test("the effective cluster file is uploaded to kube-system/kubeprov-config", async () => {
    const cm = await kubectlJson(["-n", "kube-system", "get", "configmap", "kubeprov-config"]);
    const uploaded = parseYaml(cm.data["cluster.yaml"]);
    assert.equal(uploaded.metadata.name, NAME);
    assert.equal(uploaded.spec.networking.podSubnet, "10.244.0.0/16");
  });

  test("the node is labelled control-plane, not tainted (it is a worker too), and Ready with a pod CIDR", async () => {
    const node = await waitUntil(
      "node Ready",
      async () => {
        const n = await kubectlJson(["get", "node", NODE]);
        return n.status.conditions.find((c: { type: string; status: string }) => c.type === "Ready")?.status === "True" ? n : undefined;
      },
      120_000,
    );
    assert.equal(node.metadata.labels["node-role.kubernetes.io/control-plane"], "");
    assert.ok(!(node.spec.taints ?? []).some((t: { key: string }) => t.key === "node-role.kubernetes.io/control-plane"), JSON.stringify(node.spec.taints));
    assert.match(node.spec.podCIDR, /^10\.244\.\d+\.0\/24$/);
    const conf = await execa("docker", ["exec", NODE, "cat", "/etc/cni/net.d/10-kubeprov-bridge.conflist"]);
    assert.equal(JSON.parse(String(conf.stdout)).plugins[0].ipam.ranges[0][0].subnet, node.spec.podCIDR);
  });

  test("kube-proxy and CoreDNS run; kube-dns is the 10th address of the service subnet", async () => {
    await waitUntil(
      "kube-proxy ready",
      async () => {
        const ds = await kubectlJson(["-n", "kube-system", "get", "daemonset", "kube-proxy"]);
        return ds.status.numberReady >= 1 ? ds : undefined;
      },
      120_000,
    );
    await waitUntil(
      "CoreDNS available",
      async () => {
        const d = await kubectlJson(["-n", "kube-system", "get", "deployment", "coredns"]);
        return (d.status.availableReplicas ?? 0) >= 1 ? d : undefined;
      },
      120_000,
    );
    const svc = await kubectlJson(["-n", "kube-system", "get", "service", "kube-dns"]);
    assert.equal(svc.spec.clusterIP, "10.96.0.10");
  });

  test("a pod from a local image reaches the API through the kubernetes Service and resolves it through CoreDNS", async () => {
    // Into the node's containerd, as kubeprov's images phase does for the cluster's own images.
    const tar = join(work, "probe.tar");
    await execa("docker", ["save", "-o", tar, PROBE_IMAGE]);
    await execa("docker", ["exec", "-i", NODE, "ctr", "-n", "k8s.io", "images", "import", "-"], { inputFile: tar });
    const pod = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "kpt-probe", namespace: "default" },
      spec: {
        restartPolicy: "Never",
        containers: [{ name: "probe", image: `docker.io/library/${PROBE_IMAGE}`, imagePullPolicy: "Never", env: [{ name: "DNS_DOMAIN", value: "cluster.local" }] }],
      },
    };
    const c = await kubectl(["apply", "-f", "-"], JSON.stringify(pod));
    assert.equal(c.code, 0, c.stderr);
    const phase = await waitUntil(
      "probe pod finished",
      async () => {
        const p = await kubectlJson(["-n", "default", "get", "pod", "kpt-probe"]);
        return p.status.phase === "Succeeded" || p.status.phase === "Failed" ? (p.status.phase as string) : undefined;
      },
      150_000,
    );
    const logs = await kubectl(["-n", "default", "logs", "kpt-probe"]);
    assert.equal(logs.code, 0, `kubectl logs (the API server reaches the kubelet): ${logs.stderr}`);
    console.log(logs.stdout.split("\n").map((l) => `#   ${l}`).join("\n"));
    assert.equal(phase, "Succeeded", `probe: ${logs.stdout}${logs.stderr}`);
    const svc = await kubectlJson(["-n", "default", "get", "service", "kubernetes"]);
    assert.match(logs.stdout, new RegExp(`api: ok ${svc.spec.clusterIP.replace(/\./g, "\\.")}:443 tls`));
    assert.match(logs.stdout, new RegExp(`dns: ok kubernetes\\.default\\.svc\\.cluster\\.local\\. -> \\[${svc.spec.clusterIP.replace(/\./g, "\\.")}\\]`));
  });

  test("token create / list / delete, and cluster-info follows", async () => {
    const created = await kubeprov(env, ["token", "create", "--name", NAME, "--ttl", "2h", "--description", "e2e token"]);
    assert.equal(created.code, 0, created.stderr);
    const tok = created.stdout.trim();
    assert.match(tok, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
    const id = tok.slice(0, 6);
    const listed = (await tokens()).find((t) => t.id === id);
    assert.ok(listed, "the new token is listed");
    assert.equal(listed!.description, "e2e token");
    assert.match(listed!.ttl, /^(1h5\dm|2h0m)$/);
    const data = await clusterInfo();
    assert.equal(verifyDetachedJws(data[`jws-kubeconfig-${id}`], data.kubeconfig, tok), true);

    const chosen = "kptabc.0123456789abcdef";
    const given = await kubeprov(env, ["token", "create", "--name", NAME, "--ttl", "0", "--print-join-command", chosen]);
    assert.equal(given.code, 0, given.stderr);
    assert.match(given.stdout, new RegExp(`kubeadm join ${nodeIP.replace(/\./g, "\\.")}:6443 --token ${chosen.replace(".", "\\.")} --discovery-token-ca-cert-hash sha256:[0-9a-f]{64}`));
    assert.match(given.stdout, /kubeprov join --name /);
    assert.equal((await tokens()).find((t) => t.id === "kptabc")?.expires, null, "--ttl 0 never expires");
    const dup = await kubeprov(env, ["token", "create", "--name", NAME, chosen]);
    assert.equal(dup.code, 1, "an existing token id is refused");

    for (const del of [id, chosen]) {
      const d = await kubeprov(env, ["token", "delete", "--name", NAME, del]);
      assert.equal(d.code, 0, d.stderr);
    }
    const after = await tokens();
    assert.ok(!after.some((t) => t.id === id || t.id === "kptabc"), "deleted tokens are gone");
    const data2 = await clusterInfo();
    assert.equal(data2[`jws-kubeconfig-${id}`], undefined, "its signature is gone from cluster-info");
    assert.equal(data2["jws-kubeconfig-kptabc"], undefined);
  });

  test("token create: a TOKEN or --ttl of the wrong format is refused with exit 2 before anything changes", async () => {
    const before = await tokens();
    const bad = await kubeprov(env, ["token", "create", "--name", NAME, "KPT.not-a-token"]);
    assert.equal(bad.code, 2, bad.stderr);
    assert.match(bad.stderr, /\[a-z0-9\]\{6\}\.\[a-z0-9\]\{16\}/);
    assert.doesNotMatch(bad.stderr, /not-a-token/, "the bad value is not echoed");
    const badTtl = await kubeprov(env, ["token", "create", "--name", NAME, "--ttl", "soon"]);
    assert.equal(badTtl.code, 2, badTtl.stderr);
    assert.deepEqual((await tokens()).map((t) => t.id), before.map((t) => t.id));
  });

  test("init --token of the wrong format exits 2 before any host is touched", async () => {
    const before = await tokens();
    const badInit = await kubeprov(env, ["init", "--name", NAME, "--token", "abc.def", "-o", "json"]);
    assert.equal(badInit.code, 2, `init --token abc.def: ${badInit.stderr}`);
    assert.ok(!badInit.stdout.includes('"type":"task"'), "no task ran");
    assert.deepEqual((await tokens()).map((t) => t.id), before.map((t) => t.id));
  });

  test("drift is repaired, also with the API reached through kubectl on the node (SSH only)", async () => {
    assert.equal((await kubectl(["label", "node", NODE, "node-role.kubernetes.io/control-plane-"])).code, 0);
    assert.equal((await kubectl(["taint", "node", NODE, "node-role.kubernetes.io/control-plane:NoSchedule"])).code, 0);
    assert.equal((await kubectl(["-n", "kube-system", "delete", "configmap", "coredns"])).code, 0);
    const r = await kubeprov(env, ["init", "--name", NAME, "-o", "json"], { KUBEPROV_API_TRANSPORT: "kubectl" });
    assert.equal(r.code, 0, r.stderr + r.stdout.slice(-3000));
    const changed = (summaryOf(r.stdout).results ?? []).filter((x) => x.status === "changed").map((x) => x.task).sort();
    assert.deepEqual(changed, ["addons/coredns", "mark-control-plane/node"]);
    const node = await kubectlJson(["get", "node", NODE]);
    assert.equal(node.metadata.labels["node-role.kubernetes.io/control-plane"], "");
    assert.ok(!(node.spec.taints ?? []).some((t: { key: string }) => t.key === "node-role.kubernetes.io/control-plane"));
    const cm = await kubectlJson(["-n", "kube-system", "get", "configmap", "coredns"]);
    assert.match(cm.data.Corefile, /kubernetes cluster\.local/);
    const list = await kubeprov(env, ["token", "list", "--name", NAME, "-o", "json"], { KUBEPROV_API_TRANSPORT: "kubectl" });
    const noTtl = (l: { ttl?: string }[]) => l.map(({ ttl: _ttl, ...rest }) => rest);
    assert.deepEqual(noTtl(JSON.parse(list.stdout)), noTtl(await tokens()), "token list is the same either way");
  });

  test("re-running init changes nothing in bootstrap and addons", async () => {
    const r = await kubeprov(env, ["init", "--name", NAME, "-o", "json"]);
    assert.equal(r.code, 0, r.stderr + r.stdout.slice(-3000));
    const s = summaryOf(r.stdout);
    const mine = (s.results ?? []).filter((x) => /^(bootstrap-rbac|upload-config|mark-control-plane|bootstrap-token|cluster-info|addons)\//.test(x.task));
    assert.ok(mine.length >= 9, `bootstrap and addons tasks ran: ${mine.map((m) => m.task).join(", ")}`);
    for (const m of mine) assert.equal(m.status, "ok", `${m.task}: ${m.status}`);
    console.log(`# init re-run: ${s.changed} changed in ${r.ms} ms`);
  });
});
