// `kubeprov up --control-planes 3 --nodes 4`: the seeds' HA layout on real binaries. One plan (one
// summary), three control planes with stacked etcd (three voting members), haproxy + keepalived
// on each, the kubeconfig pointing at the virtual IP; then the VIP holder is stopped and the API
// must be writable through the VIP again quickly, with never two holders at once.
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { assertVotingMembers, dockerCleanup, ETCDCTL, KUBECTL, kubectl, kubeprov, onNode, removeTestCluster, summaryOf, waitFor } from "../helpers/cluster-e2e.js";
import { newPodResolvesDns } from "../helpers/dns-probe.js";
import { dockerRestartMethod, dockerUserRules, restartDockerEngine } from "../helpers/docker-engine.js";
import { DEFAULT_KUBERNETES_VERSION } from "../../provisioner/constants.js";

const NAME = "kpt-ha";
const CPS = [`${NAME}-control-plane`, `${NAME}-control-plane2`, `${NAME}-control-plane3`];
const home = mkdtempSync(join(tmpdir(), "kpt-ha-"));
const kubeconfig = join(home, "admin.conf");
let vip = "";
const ips = new Map<string, string>();


/** The control planes that hold the VIP on eth0 right now (docker exec, the truth on each node). */
async function holders(): Promise<string[]> {
  const out = await Promise.all(
    CPS.map(async (n) => {
      const r = await execa("docker", ["exec", n, "ip", "-4", "-o", "addr", "show", "dev", "eth0"], { reject: false, timeout: 5000 });
      return r.exitCode === 0 && String(r.stdout).includes(` ${vip}/`) ? n : undefined;
    }),
  );
  return out.filter((x): x is string => !!x);
}

before(async () => {
  await dockerCleanup(NAME);
  const up = await kubeprov(home, ["up", "--name", NAME, "--control-planes", "3", "--nodes", "4", "--no-kubeconfig", "-o", "json"], 15 * 60_000);
  assert.equal(up.code, 0, `up failed:\n${up.stdout.split("\n").filter((l) => l.includes('"failed"')).join("\n")}\n${up.stderr.slice(-4000)}`);
  const summaries = up.stdout.split("\n").filter((l) => l.includes('"type":"summary"'));
  assert.equal(summaries.length, 1, `one plan, one summary; got ${summaries.length}`);
  process.stderr.write(`# up --control-planes 3 --nodes 4: ${(up.ms / 1000).toFixed(1)} s\n`);
  const kc = await kubeprov(home, ["kubeconfig", "--name", NAME]);
  assert.equal(kc.code, 0, kc.stderr);
  writeFileSync(kubeconfig, kc.stdout, { mode: 0o600 });
  const file = readFileSync(join(home, "clusters", NAME, "cluster.yaml"), "utf8");
  vip = /virtualIP: (\S+)/.exec(file)?.[1] ?? "";
  for (const m of file.matchAll(/name: (\S+)\n\s+address: (\S+)/g)) ips.set(m[1], m[2]);
});

after(async () => {
  await removeTestCluster(home, NAME);
});

test("the kubeconfig's server is the VIP, /readyz answers through it, and every node turns Ready", async () => {
  assert.match(vip, /^10\.213\.\d+\.100$/);
  assert.match(readFileSync(kubeconfig, "utf8"), new RegExp(`server: https://${vip.replace(/\./g, "\\.")}:8443`));
  const r = await kubectl(kubeconfig, ["get", "--raw", "/readyz"]);
  assert.equal(r.stdout.trim(), "ok", r.stderr);
  const ms = await waitFor(async () => {
    const n = await kubectl(kubeconfig, ["get", "nodes", "-o", "jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=='Ready')].status}{\"\\n\"}{end}"]);
    const ready = n.stdout.split("\n").filter((l) => l.endsWith("=True")).length;
    return ready === 4;
  }, 180_000, 2000);
  assert.notEqual(ms, -1, "not all 4 nodes Ready within 180 s");
  const roles = await kubectl(kubeconfig, ["get", "nodes", "-l", "node-role.kubernetes.io/control-plane", "-o", "name"]);
  assert.equal(roles.stdout.trim().split("\n").length, 3, roles.stdout);
});

test("etcd has 3 started voting members; each API server answers /readyz on its own address", async () => {
  await assertVotingMembers(CPS[0], CPS);
  const health = await onNode(CPS[0], `${ETCDCTL} endpoint health --cluster`);
  assert.equal((health.stdout.match(/is healthy/g) ?? []).length, 3, health.stdout + health.stderr);
  for (const cp of CPS) {
    // crictl (built from sigs.k8s.io/cri-tools into the bundle) sees the static pods' containers.
    const crictl = await onNode(cp, "crictl ps --name kube-apiserver --state running -q");
    assert.equal(crictl.code, 0, crictl.stderr);
    assert.match(crictl.stdout, /^[0-9a-f]{12,}$/m);
    const ip = ips.get(cp)!;
    // The admin kubeconfig's CA must accept each API server's certificate for its own address.
    const r = await kubectl(kubeconfig, ["--server", `https://${ip}:6443`, "get", "--raw", "/readyz"]);
    assert.equal(r.stdout.trim(), "ok", `${cp} (${ip}): ${r.stderr}`);
  }
});

test("every control plane's leaves chain to the same CA and carry its own address", async () => {
  const cas = new Set<string>();
  for (const cp of CPS) {
    const r = await onNode(
      cp,
      "cd /etc/kubernetes/pki && sha256sum ca.crt etcd/ca.crt sa.key front-proxy-ca.crt | cut -d' ' -f1 | tr '\\n' ' '; echo; " +
        "openssl verify -CAfile ca.crt apiserver.crt apiserver-kubelet-client.crt && openssl verify -CAfile etcd/ca.crt etcd/server.crt etcd/peer.crt && " +
        "openssl x509 -in apiserver.crt -noout -ext subjectAltName && openssl x509 -in etcd/peer.crt -noout -ext subjectAltName && stat -c '%a %n' ca.key sa.key etcd/ca.key front-proxy-ca.key",
    );
    assert.equal(r.code, 0, `${cp}: ${r.stdout}\n${r.stderr}`);
    cas.add(r.stdout.split("\n")[0]);
    const ip = ips.get(cp)!;
    assert.ok(r.stdout.split("IP Address:").length > 2 && r.stdout.includes(`IP Address:${ip}`), `${cp}: SANs lack ${ip}:\n${r.stdout}`);
    assert.ok(r.stdout.includes(`IP Address:${vip}`), `${cp}: apiserver SANs lack the VIP ${vip}`);
    assert.match(r.stdout, /^600 ca\.key$/m);
    assert.match(r.stdout, /^600 etcd\/ca\.key$/m);
  }
  assert.equal(cas.size, 1, `the control planes have different CAs or service account keys: ${[...cas].join(" | ")}`);
});

test("exactly one control plane holds the VIP; each haproxy has 3 backends up", async () => {
  assert.equal((await holders()).length, 1);
  for (const cp of CPS) {
    const r = await onNode(cp, "echo 'show servers state kube-apiservers' | socat stdio unix-connect:/run/haproxy/admin.sock");
    // Columns: be_id be_name srv_id srv_name srv_addr srv_op_state ...; 2 = running (up).
    const up = r.stdout.split("\n").filter((l) => /^\d+ kube-apiservers \d+ \S+ \S+ 2 /.test(l));
    assert.equal(up.length, 3, `${cp}: ${r.stdout}${r.stderr}`);
  }
});

test("status shows the VIP holder and each haproxy's backends", async () => {
  const r = await kubeprov(home, ["status", "--name", NAME, "-o", "json"]);
  assert.equal(r.code, 0, r.stderr);
  const doc = JSON.parse(r.stdout) as { cluster: { state: string }; hosts: Array<{ name: string; state: string; ha?: { virtualIP: string; holdsVIP: boolean; backends: Array<{ name: string; up: boolean }> } }> };
  const hosts = doc.hosts;
  assert.equal(doc.cluster.state, "Running");
  assert.deepEqual(hosts.map((h) => h.state), ["Running", "Running", "Running", "Running"]);
  const cps = hosts.filter((h) => CPS.includes(h.name));
  assert.equal(cps.length, 3);
  assert.deepEqual(cps.filter((h) => h.ha?.holdsVIP).map((h) => h.name), await holders());
  // Every control plane's etcd names the same single leader.
  const leaders = cps.map((h) => ((h as { etcdMembers?: Array<{ name: string; leader?: boolean }> }).etcdMembers ?? []).filter((m) => m.leader).map((m) => m.name));
  assert.ok(leaders.every((l) => l.length === 1 && l[0] === leaders[0][0]), JSON.stringify(leaders));
  for (const h of cps) {
    assert.equal(h.ha?.virtualIP, vip);
    assert.deepEqual(h.ha?.backends.map((b) => b.up), [true, true, true], `${h.name}: ${JSON.stringify(h.ha)}`);
  }
  const text = await kubeprov(home, ["status", "--name", NAME]);
  assert.match(text.stdout, new RegExp(`holds the virtual IP ${vip.replace(/\./g, "\\.")}; haproxy backends: \\S+ up, \\S+ up, \\S+ up`));
});

test("a second up reports 0 changed (and --timings reports on a no-op of several hosts)", async () => {
  const r = await kubeprov(home, ["up", "--name", NAME, "--control-planes", "3", "--nodes", "4", "--no-kubeconfig", "-o", "json", "--timings"]);
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  assert.match(r.stderr, /^critical path .*\n {2}\+ +\d+\.\d\d +\d+\.\d\d s {2}facts\/gather /m);
  const s = summaryOf(r.stdout);
  assert.equal(s?.changed, 0, r.stdout.split("\n").filter((l) => l.includes('"status":"changed"')).join("\n"));
  process.stderr.write(`# no-op up of 3+1: ${(r.ms / 1000).toFixed(1)} s\n`);
});

/** Polls a write through the VIP until it succeeds; returns the milliseconds it took, or -1 after 30 s. */
async function writableThroughVIP(tag: string): Promise<number> {
  return waitFor(async () => (await kubectl(kubeconfig, ["--request-timeout=2s", "create", "configmap", `${tag}-${Date.now()}`, "-n", "default"], 5000)).code === 0, 30_000, 200);
}

test("haproxy stops on the VIP holder: the check script moves the VIP; the API stays writable", async () => {
  const [holder] = await holders();
  assert.ok(holder);
  try {
    assert.equal((await onNode(holder, "systemctl stop haproxy")).code, 0);
    const moved = await waitFor(async () => {
      const h = await holders();
      return h.length === 1 && h[0] !== holder;
    }, 20_000, 200);
    assert.notEqual(moved, -1, `the VIP stayed on ${holder} after its haproxy stopped`);
    process.stderr.write(`# haproxy stopped on the holder: VIP moved after ${(moved / 1000).toFixed(1)} s\n`);
    assert.notEqual(await writableThroughVIP("haproxy-down"), -1);
    // status names the node and what is wrong with it, and exits 1.
    const st = await kubeprov(home, ["status", "--name", NAME, "-o", "json"]);
    assert.equal(st.code, 1, st.stderr);
    const doc = JSON.parse(st.stdout) as { cluster: { state: string }; hosts: Array<{ name: string; state: string; stateReasons: string[] }> };
    assert.equal(doc.cluster.state, "Degraded");
    const h = doc.hosts.find((x) => x.name === holder)!;
    assert.equal(h.state, "Degraded");
    assert.match(h.stateReasons.join("; "), /haproxy: not answering/);
    assert.deepEqual(doc.hosts.filter((x) => x.name !== holder).map((x) => x.state), ["Running", "Running", "Running"]);
  } finally {
    await onNode(holder, "systemctl start haproxy");
  }
});

test("kube-apiserver dies on the VIP holder (the node stays up): haproxy routes around it, the API stays writable", async () => {
  const [holder] = await holders();
  assert.ok(holder);
  const manifest = "/etc/kubernetes/manifests/kube-apiserver.yaml";
  try {
    // The kubelet stops the static pod once its manifest is gone.
    assert.equal((await onNode(holder, `mv ${manifest} /root/kube-apiserver.yaml`)).code, 0);
    const down = await waitFor(async () => {
      const r = await onNode(CPS.find((c) => c !== holder)!, "echo 'show servers state kube-apiservers' | socat stdio unix-connect:/run/haproxy/admin.sock");
      // srv_op_state 0: stopped (down).
      return r.stdout.split("\n").some((l) => new RegExp(`^\\d+ kube-apiservers \\d+ ${holder} \\S+ 0 `).test(l));
    }, 60_000, 200);
    assert.notEqual(down, -1, `haproxy never marked ${holder}'s API server down`);
    assert.notEqual(await writableThroughVIP("apiserver-down"), -1, "the API was not writable through the VIP with one API server down");
    const h = await holders();
    assert.equal(h.length, 1);
  } finally {
    await onNode(holder, `mv /root/kube-apiserver.yaml ${manifest}`);
  }
  const back = await waitFor(async () => {
    const r = await onNode(holder, "echo 'show servers state kube-apiservers' | socat stdio unix-connect:/run/haproxy/admin.sock");
    return r.stdout.split("\n").filter((l) => /^\d+ kube-apiservers \d+ \S+ \S+ 2 /.test(l)).length === 3;
  }, 120_000, 1000);
  assert.notEqual(back, -1, "the API server did not come back into haproxy's pool");
});

test("failover: the VIP holder is killed; the API is writable through the VIP again within seconds, never two holders", async () => {
  const [holder] = await holders();
  assert.ok(holder, "nobody holds the VIP");
  let double = 0;
  let sampling = true;
  let writable = -1;
  let healthyAgain = -1;
  const sampler = (async () => {
    while (sampling) {
      if ((await holders()).length > 1) double++;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  try {
    // A crash, not a shutdown: keepalived on the holder gets no chance to hand the VIP over, so a
    // backup must notice the missing advertisements itself.
    const t0 = Date.now();
    await execa("docker", ["kill", holder]);
    // A write is started every 200 ms (each may take up to 1.5 s): the first one that succeeds says
    // when the API became writable through the VIP again, to within 0.2 s.
    const attempts: Promise<void>[] = [];
    for (let i = 0; writable === -1 && Date.now() - t0 < 60_000; i++) {
      attempts.push(
        kubectl(kubeconfig, ["--request-timeout=1500ms", "create", "configmap", `failover-${i}`, "-n", "default"], 5000).then((r) => {
          if (r.code === 0 && writable === -1) writable = Date.now() - t0;
        }),
      );
      await new Promise((r) => setTimeout(r, 200));
    }
    await Promise.all(attempts);
    assert.notEqual(writable, -1, "the API was not writable through the VIP within 60 s of the holder stopping");
    process.stderr.write(`# failover: writable through the VIP ${(writable / 1000).toFixed(2)} s after docker kill of ${holder}\n`);
    const now = await holders();
    assert.equal(now.length, 1);
    assert.notEqual(now[0], holder);
  } finally {
    sampling = false;
    await sampler;
    await execa("docker", ["start", holder], { reject: false });
    // The stopped control plane comes back: etcd has 3 healthy members again (waited for even when
    // an assertion above failed, so the tests after this one find the cluster whole).
    const other = CPS.find((c) => c !== holder)!;
    healthyAgain = await waitFor(async () => {
      const h = await onNode(other, `${ETCDCTL} endpoint health --cluster`);
      return (h.stdout.match(/is healthy/g) ?? []).length === 3;
    }, 240_000, 3000);
  }
  assert.equal(double, 0, "two control planes held the VIP at once");
  assert.notEqual(healthyAgain, -1, "etcd did not get back to 3 healthy members within 240 s");
  // The goal is under 3 s (`npm run bench` gives min/median/max); the test allows for a loaded CI machine.
  assert.ok(writable < 8000, `failover took ${writable} ms`);
});

test("a control plane removed (etcd 3 -> 2, haproxy 2 backends) and added back with up (2 -> 3), no stale member", async () => {
  const cp3 = CPS[2];
  const r = await kubeprov(home, ["node", "delete", "--name", NAME, cp3]);
  assert.equal(r.code, 0, r.stderr.slice(-3000));
  assert.match(r.stderr, /etcd member [0-9a-f]+ removed/);
  const two = await onNode(CPS[0], `${ETCDCTL} member list -w simple`);
  assert.deepEqual(two.stdout.trim().split("\n").map((l) => l.split(", ")[2]).sort(), [CPS[0], CPS[1]]);
  for (const cp of [CPS[0], CPS[1]]) {
    const state = await onNode(cp, "echo 'show servers state kube-apiservers' | socat stdio unix-connect:/run/haproxy/admin.sock");
    assert.equal(state.stdout.split("\n").filter((l) => /^\d+ kube-apiservers /.test(l)).length, 2, `${cp}: ${state.stdout}`);
  }
  assert.notEqual(await writableThroughVIP("after-remove"), -1);
  const back = await kubeprov(home, ["up", "--name", NAME, "--control-planes", "3", "--nodes", "4", "--no-kubeconfig", "-o", "json"], 15 * 60_000);
  assert.equal(back.code, 0, back.stdout.split("\n").filter((l) => l.includes('"failed"')).join("\n") + back.stderr.slice(-3000));
  await assertVotingMembers(CPS[0], CPS);
});

/** Every node's Ready condition with a heartbeat from after `since` (status from before a stop does not count). */
async function allNodesFreshlyReady(since: number): Promise<boolean> {
  const r = await kubectl(kubeconfig, ["get", "nodes", "-o", "json"]);
  if (r.code !== 0) return false;
  const nodes = (JSON.parse(r.stdout) as { items: Array<{ status: { conditions: Array<{ type: string; status: string; lastHeartbeatTime: string }> } }> }).items;
  return nodes.length === 4 && nodes.every((n) => n.status.conditions.some((c) => c.type === "Ready" && c.status === "True" && Date.parse(c.lastHeartbeatTime) >= since - 1000));
}

test("stop and start of the whole HA cluster: status Stopped, then the API, every node and DNS back; a pod from before runs again", async () => {
  const pod = {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name: "from-before-stop", namespace: "default" },
    spec: {
      nodeName: `${NAME}-worker`,
      containers: [{ name: "sleep", image: `registry.k8s.io/kube-proxy:${DEFAULT_KUBERNETES_VERSION}`, imagePullPolicy: "Never", command: ["sleep", "infinity"] }],
    },
  };
  assert.equal((await execa(KUBECTL, ["--kubeconfig", kubeconfig, "apply", "-f", "-"], { input: JSON.stringify(pod), reject: false })).exitCode, 0);
  const uid = async () => (await kubectl(kubeconfig, ["get", "pod", "from-before-stop", "-o", "jsonpath={.metadata.uid} {.status.phase}"])).stdout.trim();
  assert.notEqual(await waitFor(async () => / Running$/.test(await uid()), 60_000), -1, "the pod did not start");
  const before = (await uid()).split(" ")[0];

  const stop = await kubeprov(home, ["stop", "--name", NAME]);
  assert.equal(stop.code, 0, stop.stderr);
  const stopped = await kubeprov(home, ["status", "--name", NAME, "-o", "json"]);
  assert.equal(stopped.code, 1);
  const doc = JSON.parse(stopped.stdout) as { cluster: { state: string }; hosts: Array<{ state: string }> };
  assert.equal(doc.cluster.state, "Stopped");
  assert.deepEqual(doc.hosts.map((h) => h.state), ["Stopped", "Stopped", "Stopped", "Stopped"]);

  const start = await kubeprov(home, ["start", "--name", NAME], 400_000);
  assert.equal(start.code, 0, start.stderr.slice(-2000));
  assert.match(start.stderr, /is back: API, 4 node\(s\) Ready, CoreDNS ready/);
  const dns = await newPodResolvesDns(KUBECTL, kubeconfig, "dns-after-ha-start", 120_000);
  assert.notEqual(dns, -1, "a new pod did not resolve kubernetes.default within 120 s after start");
  process.stderr.write(`# start of a stopped 3+1 HA cluster: back ${(start.ms / 1000).toFixed(1)} s, a new pod resolved DNS ${((start.ms + dns) / 1000).toFixed(1)} s\n`);
  assert.notEqual(await waitFor(async () => (await uid()) === `${before} Running`, 60_000), -1, `the pod from before: ${await uid()}`);
  const running = await waitFor(async () => (await kubeprov(home, ["status", "--name", NAME])).code === 0, 60_000, 2000);
  assert.notEqual(running, -1, (await kubeprov(home, ["status", "--name", NAME])).stdout);
});

test("the Docker engine restarts with the HA cluster up: the nodes boot again by themselves and the cluster comes back", async (t) => {
  const method = await dockerRestartMethod();
  if (method.how === "none") {
    t.skip(`this test restarts only a dockerd this project started: ${method.why}`);
    return;
  }
  const rules = await dockerUserRules();
  const t0 = Date.now();
  await restartDockerEngine(method);
  const engine = Date.now() - t0;
  // The egress block of .ci/run lives in DOCKER-USER: dockerd must not have dropped it.
  const after = await dockerUserRules();
  const lost = rules.filter((r) => !after.includes(r));
  for (const r of lost) await execa("iptables", r.replace(/^-A /, "-I ").split(" "), { reject: false });
  assert.deepEqual(lost, [], "rules of DOCKER-USER lost in the engine restart (put back)");

  const all = [...CPS, `${NAME}-worker`];
  const booted = await waitFor(async () => {
    const r = await execa("docker", ["inspect", "-f", "{{.State.Running}}", ...all], { reject: false });
    return String(r.stdout).trim().split("\n").every((l) => l === "true");
  }, 60_000);
  assert.notEqual(booted, -1, "the node containers did not start again by themselves");
  const back = await waitFor(async () => (await kubectl(kubeconfig, ["get", "--raw", "/readyz"])).stdout.trim() === "ok" && (await allNodesFreshlyReady(t0)), 300_000, 1000);
  assert.notEqual(back, -1, `the cluster did not come back: ${(await kubectl(kubeconfig, ["get", "nodes"])).stdout}`);
  const dns = await newPodResolvesDns(KUBECTL, kubeconfig, "dns-after-engine-restart", 120_000);
  assert.notEqual(dns, -1, "a new pod did not resolve kubernetes.default within 120 s of the cluster being back");
  const total = Date.now() - t0;
  process.stderr.write(`# docker engine restart: engine ${(engine / 1000).toFixed(1)} s, API and 4 nodes Ready ${((engine + back) / 1000).toFixed(1)} s, new pod resolved DNS ${(total / 1000).toFixed(1)} s\n`);
  const ms = await waitFor(async () => {
    const h = await onNode(CPS[0], `${ETCDCTL} endpoint health --cluster`);
    return (h.stdout.match(/is healthy/g) ?? []).length === 3;
  }, 120_000, 2000);
  assert.notEqual(ms, -1, "etcd did not get back to 3 healthy members");
});
