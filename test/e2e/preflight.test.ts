// Preflight and prepare on real docker-driver nodes (`kubeprov up --no-kubernetes`): firewalld
// detected and fixed, real listening unix sockets for each CRI combination, a process on 6443,
// a worker never checked for control-plane ports, --ignore-preflight-errors, --fix then a clean
// preflight and a second --fix with 0 changed, an unknown check ID refused before anything is
// touched, and prepare run twice (second run 0 changed) with containerd answering.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { packageRoot, bundleDir } from "../../provisioner/paths.js";
import { loadTarget } from "../../provisioner/cli/target.js";
import { runPipeline } from "../../provisioner/engine/pipeline.js";
import { factsTask } from "../../provisioner/tasks/facts.js";
import { prepareTasks } from "../../provisioner/tasks/prepare.js";
import { MemoryReporter, type KubeprovEvent } from "../../provisioner/events.js";
import { DEFAULT_KUBERNETES_VERSION } from "../../provisioner/constants.js";

const NAME = `kpt-pf${process.pid % 10000}`;
const CP = `${NAME}-control-plane`;
const W = `${NAME}-worker`;
const root = packageRoot();
const tmp = mkdtempSync(join(tmpdir(), "kpt-preflight-"));

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** The last command run, shown when an assertion about its events fails. */
let last: (Run & { args: string[] }) | undefined;

function kubeprov(...args: string[]): Run {
  const r = spawnSync(process.execPath, [join(root, "bin", "kubeprov.js"), ...args], { cwd: root, encoding: "utf8", timeout: 300_000 });
  last = { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, args };
  return last;
}

function dexec(node: string, script: string, check = true): string {
  const r = spawnSync("docker", ["exec", node, "sh", "-c", script], { encoding: "utf8", timeout: 120_000 });
  if (check && r.status !== 0) throw new Error(`docker exec ${node} ${script}: exit ${r.status}: ${r.stderr}`);
  return r.stdout.trim();
}

/** Start a listener inside a node; returns its PID there (ended by PID in the same node). */
function listen(node: string, socatArgs: string): number {
  return Number(dexec(node, `nohup socat ${socatArgs} >/dev/null 2>&1 & echo $!`));
}
function stop(node: string, pid: number): void {
  dexec(node, `kill ${pid} 2>/dev/null; i=0; while kill -0 ${pid} 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done`, false);
}
function waitUnixListening(node: string, path: string): void {
  dexec(node, `i=0; until ss -xlnH | grep -q ' ${path} '; do i=$((i+1)); [ $i -gt 50 ] && exit 1; sleep 0.1; done`);
}

type Check = Extract<KubeprovEvent, { type: "check" }>;
function jsonEvents(out: string): KubeprovEvent[] {
  return out
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as KubeprovEvent);
}
function checks(events: KubeprovEvent[], host: string): Check[] {
  return events.filter((e): e is Check => e.type === "check" && e.host === host);
}
function check(events: KubeprovEvent[], host: string, id: string): Check {
  const c = checks(events, host).find((e) => e.id === id);
  assert.ok(c, `no ${id} check on ${host}; last command kubeprov ${last?.args.join(" ")} exited ${last?.code}:\n${last?.stderr}\n${last?.stdout.slice(-2000)}`);
  return c;
}
function summary(events: KubeprovEvent[]) {
  const s = events[events.length - 1]!;
  assert.equal(s.type, "summary", "the summary event comes last");
  return s as Extract<KubeprovEvent, { type: "summary" }>;
}

before(async () => {
  const r = kubeprov("up", "--name", NAME, "--nodes", "2", "--no-kubernetes");
  assert.equal(r.code, 0, `up failed: ${r.stderr}`);
});

after(async () => {
  kubeprov("delete", "--name", NAME);
  rmSync(tmp, { recursive: true, force: true });
});

test("fresh nodes pass; -o json gives one check event per check then the summary; a worker gets no control-plane checks", () => {
  const r = kubeprov("preflight", "--name", NAME, "-o", "json");
  assert.equal(r.code, 0, r.stderr + r.stdout);
  const ev = jsonEvents(r.stdout);
  summary(ev);
  for (const c of ev.filter((e) => e.type === "check")) {
    assert.deepEqual(Object.keys(c).sort(), ["host", "id", "message", "status", "type"]);
    assert.notEqual((c as Check).status, "fail");
  }
  const cpIds = checks(ev, CP).map((c) => c.id);
  const wIds = checks(ev, W).map((c) => c.id);
  for (const id of ["Port-6443", "Port-2379", "Port-2380", "Port-10257", "Port-10259", "NumCPU", "Mem", "DirAvailable--var-lib-etcd"]) {
    assert.ok(cpIds.includes(id), `${id} on the control plane`);
    assert.ok(!wIds.includes(id), `${id} on the worker`);
  }
  assert.ok(wIds.includes("Port-10250"));
  // node containers: no /proc/modules, yet the modules are there; cgroup v1 is a warning naming failCgroupV1
  assert.equal(check(ev, CP, "KernelModule-br_netfilter").status, "pass");
  assert.equal(check(ev, CP, "KernelModule-overlay").status, "pass");
  assert.match(check(ev, CP, "SystemVerification").message, /failCgroupV1: false/);
  assert.match(check(ev, CP, "CRI").message, /prepare installs and configures containerd/);
});

test("an unknown check ID in --ignore-preflight-errors: exit 2 before anything is touched", () => {
  dexec(CP, "systemctl start firewalld");
  try {
    const before = dexec(CP, "firewall-cmd --list-ports; ls /etc/sysctl.d/");
    const r = kubeprov("preflight", "--name", NAME, "--fix", "--ignore-preflight-errors=Port-6443,NoSuchCheck");
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown check ID NoSuchCheck/);
    assert.equal(r.stdout, "");
    assert.equal(dexec(CP, "firewall-cmd --list-ports; ls /etc/sysctl.d/"), before);
  } finally {
    dexec(CP, "systemctl stop firewalld");
  }
});

test("a process listening on 6443 fails Port-6443 on the control plane only; --ignore-preflight-errors=Port-6443 makes it a warning", () => {
  const pCP = listen(CP, "TCP-LISTEN:6443,fork,reuseaddr /dev/null");
  const pW = listen(W, "TCP-LISTEN:6443,fork,reuseaddr /dev/null");
  try {
    dexec(CP, "i=0; until ss -ltnH | grep -q ':6443 '; do i=$((i+1)); [ $i -gt 50 ] && exit 1; sleep 0.1; done");
    const r = kubeprov("preflight", "--name", NAME, "-o", "json");
    assert.equal(r.code, 1);
    const ev = jsonEvents(r.stdout);
    const p = check(ev, CP, "Port-6443");
    assert.equal(p.status, "fail");
    assert.match(p.message, /port 6443 is in use by socat/);
    assert.ok(!checks(ev, W).some((c) => c.id === "Port-6443"), "worker checked for 6443");
    assert.ok(checks(ev, W).every((c) => c.status !== "fail"));
    assert.match(r.stderr, new RegExp(`${CP}.*Port-6443`));
    assert.equal(summary(ev).failed, 1);

    const text = kubeprov("preflight", "--name", NAME);
    assert.equal(text.code, 1);
    assert.match(text.stdout, new RegExp(`\\[${CP}\\] check Port-6443: FAIL port 6443 is in use by socat`));

    const ig = kubeprov("preflight", "--name", NAME, "-o", "json", "--ignore-preflight-errors=Port-6443");
    assert.equal(ig.code, 0, ig.stderr);
    const w = check(jsonEvents(ig.stdout), CP, "Port-6443");
    assert.equal(w.status, "warn");
    assert.equal(w.ignored, true);
  } finally {
    stop(CP, pCP);
    stop(W, pW);
  }
});

test("CRI detection with real listening unix sockets (only listening ones count); criSocket overrides", () => {
  const { containerd, crio, criDockerd, docker } = {
    containerd: "/run/containerd/containerd.sock",
    crio: "/var/run/crio/crio.sock",
    criDockerd: "/var/run/cri-dockerd.sock",
    docker: "/var/run/docker.sock",
  };
  dexec(W, "mkdir -p /run/containerd /var/run/crio");
  const pids: number[] = [];
  const up = (...paths: string[]) => {
    for (const p of paths) {
      pids.push(listen(W, `UNIX-LISTEN:${p},fork /dev/null`));
      waitUnixListening(W, p);
    }
  };
  const down = () => {
    while (pids.length) stop(W, pids.pop()!);
    dexec(W, `rm -f ${containerd} ${crio} ${criDockerd} ${docker}`);
  };
  const cri = (...extra: string[]) => {
    const r = kubeprov("preflight", "--name", NAME, "-o", "json", ...extra);
    return { code: r.code, c: check(jsonEvents(r.stdout), W, "CRI") };
  };
  try {
    up(crio);
    let r = cri();
    assert.equal(r.c.status, "pass");
    assert.match(r.c.message, /using \/var\/run\/crio\/crio.sock/);

    up(containerd);
    r = cri();
    assert.equal(r.code, 1);
    assert.equal(r.c.status, "fail");
    assert.ok(r.c.message.includes(containerd) && r.c.message.includes(crio), r.c.message);
    assert.match(r.c.message, /criSocket/);

    // the cluster file's criSocket for that host wins
    const file = join(tmp, "cri.yaml");
    const doc = parse(readFileSync(kubeprovClusterFile(), "utf8"));
    doc.spec.hosts.find((h: { name: string }) => h.name === W).criSocket = crio;
    writeFileSync(file, stringify(doc));
    const o = kubeprov("preflight", "-f", file, "-o", "json");
    assert.equal(o.code, 0, o.stderr);
    assert.match(check(jsonEvents(o.stdout), W, "CRI").message, /criSocket \/var\/run\/crio\/crio.sock set in the cluster file; it is listening/);
    down();

    up(criDockerd, containerd);
    r = cri();
    assert.equal(r.c.status, "pass");
    assert.match(r.c.message, /cri-dockerd wins/);
    down();

    up(docker);
    r = cri();
    assert.equal(r.c.status, "fail");
    assert.match(r.c.message, /not a CRI runtime since Kubernetes 1\.24.*cri-dockerd/);
    down();

    // a socket file nobody listens on (socat killed without cleanup) is not a runtime
    const stale = listen(W, `UNIX-LISTEN:${crio} /dev/null`);
    waitUnixListening(W, crio);
    dexec(W, `kill -9 ${stale}`);
    dexec(W, `test -S ${crio}`);
    r = cri();
    assert.equal(r.c.status, "pass");
    assert.match(r.c.message, /no container runtime socket found/);
  } finally {
    down();
  }
});

function kubeprovClusterFile(): string {
  const home = process.env.KUBEPROV_HOME ?? join(process.env.HOME ?? "/root", ".local", "share", "kubeprov");
  return join(home, "clusters", NAME, "cluster.yaml");
}

test("firewalld and a wrong hostname are detected, --fix repairs them, preflight is then clean, and a second --fix changes nothing", () => {
  dexec(CP, "systemctl start firewalld");
  dexec(W, "hostname wrong-name");
  try {
    const r = kubeprov("preflight", "--name", NAME, "-o", "json");
    assert.equal(r.code, 1, r.stderr + r.stdout);
    const ev = jsonEvents(r.stdout);
    const fw = check(ev, CP, "Firewalld");
    assert.equal(fw.status, "warn");
    assert.match(fw.message, /6443\/tcp, 2379-2380\/tcp, 10250\/tcp, 10257\/tcp, 10259\/tcp are not open/);
    assert.equal(check(ev, W, "Hostname").status, "fail");

    const fix = kubeprov("preflight", "--name", NAME, "--fix", "-o", "json");
    assert.equal(fix.code, 0, fix.stderr + fix.stdout);
    const fev = jsonEvents(fix.stdout);
    assert.ok(summary(fev).changed >= 2);
    assert.ok(checks(fev, CP).every((c) => c.status !== "fail") && checks(fev, W).every((c) => c.status !== "fail"));
    const ports = dexec(CP, "firewall-cmd --list-ports").split(/\s+/);
    for (const p of ["6443/tcp", "2379-2380/tcp", "10250/tcp", "10257/tcp", "10259/tcp"]) assert.ok(ports.includes(p), `${p} open`);
    assert.equal(dexec(W, "hostname"), W);
    assert.equal(dexec(CP, "cat /etc/sysctl.d/99-kubeprov.conf | grep -c '= 1'"), "2");

    const clean = kubeprov("preflight", "--name", NAME, "-o", "json");
    assert.equal(clean.code, 0, clean.stderr + clean.stdout);
    const cev = jsonEvents(clean.stdout);
    assert.equal(check(cev, CP, "Firewalld").status, "pass");
    assert.equal(check(cev, W, "Hostname").status, "pass");

    const again = kubeprov("preflight", "--name", NAME, "--fix", "-o", "json");
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.equal(summary(jsonEvents(again.stdout)).changed, 0);
  } finally {
    dexec(CP, "systemctl stop firewalld", false);
    dexec(W, `hostname ${W}`, false);
  }
});

test("prepare: binaries, CNI plugins, containerd configured and running; a second run changes nothing", { skip: existsSync(join(bundleDir(DEFAULT_KUBERNETES_VERSION), "manifest.json")) ? false : "no artifact bundle (run `npm run artifacts`)" }, async () => {
  const { cluster, source } = await loadTarget({ name: NAME });
  const run = async () => {
    const reporter = new MemoryReporter();
    const s = await runPipeline({ cluster, source, tasks: prepareTasks(), facts: factsTask, reporter, acceptNewHostKeys: false });
    return { s, reporter };
  };
  const first = await run();
  assert.ok(first.s.changed >= 2, `first run changed ${first.s.changed}`);
  for (const node of [CP, W]) {
    assert.equal(dexec(node, "systemctl is-active containerd"), "active");
    assert.match(dexec(node, "ctr version"), /Server:\s+Version:/);
    const cfg = dexec(node, "cat /etc/containerd/config.toml");
    assert.match(cfg, /SystemdCgroup = false/); // the docker driver's cluster file says cgroupfs
    assert.match(cfg, /restrict_oom_score_adj = true/);
    assert.match(cfg, /sandbox_image = "registry.k8s.io\/pause:3.10.2"/);
    assert.match(cfg, /bin_dir = "\/usr\/lib\/cni"/);
    const manifest = JSON.parse(readFileSync(join(bundleDir(DEFAULT_KUBERNETES_VERSION), "manifest.json"), "utf8"));
    for (const b of ["kubelet", "kubectl"]) {
      assert.equal(dexec(node, `sha256sum /usr/local/bin/${b} | cut -d' ' -f1`), manifest.sha256[b]);
      assert.equal(dexec(node, `stat -c %a /usr/local/bin/${b}`), "755");
    }
    assert.match(dexec(node, "/usr/local/bin/kubelet --version"), /Kubernetes v1\.37\.2/);
    assert.equal(dexec(node, "test -e /usr/local/bin/kube-apiserver && echo yes || echo no"), "no"); // static-pods mode
  }
  const second = await run();
  assert.equal(second.s.changed, 0, JSON.stringify(second.s.results.filter((r) => r.status !== "ok")));
  assert.equal(second.s.failed, 0);

  // the runtime prepare configured is what preflight now detects, with the cgroup driver it wrote
  const r = kubeprov("preflight", "--name", NAME, "-o", "json");
  assert.equal(r.code, 0, r.stderr);
  const ev = jsonEvents(r.stdout);
  assert.match(check(ev, CP, "CRI").message, /using \/run\/containerd\/containerd.sock/);
  assert.match(check(ev, CP, "CgroupDriver").message, /configured by kubeprov \(kept at cgroupfs\)/);
  // a drifted config is put back and containerd restarted
  dexec(W, "sed -i 's/SystemdCgroup = false/SystemdCgroup = true/' /etc/containerd/config.toml");
  const third = await run();
  assert.equal(third.s.changed, 1);
  assert.match(dexec(W, "cat /etc/containerd/config.toml"), /SystemdCgroup = false/);
  assert.equal(createHash("sha256").update(dexec(W, "cat /etc/containerd/config.toml")).digest("hex"), createHash("sha256").update(dexec(CP, "cat /etc/containerd/config.toml")).digest("hex"));
});

test("prepare with controlPlane.mode systemd: the control-plane binaries go to control planes only", { skip: existsSync(join(bundleDir(DEFAULT_KUBERNETES_VERSION), "manifest.json")) ? false : "no artifact bundle" }, async () => {
  const file = join(tmp, "systemd.yaml");
  const doc = parse(readFileSync(kubeprovClusterFile(), "utf8"));
  doc.spec.controlPlane = { mode: "systemd" };
  writeFileSync(file, stringify(doc));
  const { cluster, source } = await loadTarget({ file });
  const run = () => runPipeline({ cluster, source, tasks: prepareTasks(), facts: factsTask, reporter: new MemoryReporter() });
  const t0 = Date.now();
  const first = await run();
  const ms = Date.now() - t0;
  const changed = first.results.filter((r) => r.status === "changed").map((r) => `${r.host} ${r.task}`);
  assert.deepEqual(changed, [`${CP} prepare/binaries`]);
  const manifest = JSON.parse(readFileSync(join(bundleDir(DEFAULT_KUBERNETES_VERSION), "manifest.json"), "utf8"));
  for (const b of ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "etcdctl"]) {
    assert.equal(dexec(CP, `sha256sum /usr/local/bin/${b} | cut -d' ' -f1`), manifest.sha256[b], b);
    assert.equal(dexec(W, `test -e /usr/local/bin/${b} && echo yes || echo no`), "no", `${b} on the worker`);
  }
  assert.match(dexec(CP, "/usr/local/bin/etcd --version"), /etcd Version: 3\.7\.0/);
  process.stderr.write(`# prepare (systemd mode) uploaded 5 control-plane binaries in ${ms} ms\n`);
  assert.equal((await run()).changed, 0);
});

test("the cluster marker: a re-run on this cluster's own ports and files passes; a host another cluster owns is refused", { skip: existsSync(join(bundleDir(DEFAULT_KUBERNETES_VERSION), "manifest.json")) ? false : "no artifact bundle" }, async () => {
  assert.equal(dexec(CP, "cat /etc/kubernetes/kubeprov-cluster"), NAME);
  const p = listen(CP, "TCP-LISTEN:6443,fork,reuseaddr /dev/null");
  try {
    dexec(CP, "i=0; until ss -ltnH | grep -q ':6443 '; do i=$((i+1)); [ $i -gt 50 ] && exit 1; sleep 0.1; done");
    dexec(CP, "mkdir -p /etc/kubernetes/manifests && touch /etc/kubernetes/manifests/kube-apiserver.yaml");
    const r = kubeprov("preflight", "--name", NAME, "-o", "json");
    assert.equal(r.code, 0, r.stdout);
    const ev = jsonEvents(r.stdout);
    assert.match(check(ev, CP, "Port-6443").message, new RegExp(`this cluster's kube-apiserver.*${NAME}`));
    assert.equal(check(ev, CP, "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml").status, "pass");
    // the same host claimed by another cluster: preflight fails, prepare refuses to take it over
    dexec(CP, "echo other-cluster > /etc/kubernetes/kubeprov-cluster");
    const o = kubeprov("preflight", "--name", NAME, "-o", "json");
    assert.equal(o.code, 1);
    assert.match(check(jsonEvents(o.stdout), CP, "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml").message, /belongs to cluster other-cluster/);
    const { cluster, source } = await loadTarget({ name: NAME });
    await assert.rejects(runPipeline({ cluster, source, tasks: prepareTasks(), facts: factsTask, reporter: new MemoryReporter() }), /belongs to cluster other-cluster/);
    assert.equal(dexec(CP, "cat /etc/kubernetes/kubeprov-cluster"), "other-cluster");
  } finally {
    stop(CP, p);
    dexec(CP, `rm -f /etc/kubernetes/manifests/kube-apiserver.yaml; echo ${NAME} > /etc/kubernetes/kubeprov-cluster`, false);
  }
});
