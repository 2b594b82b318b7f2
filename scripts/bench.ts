// `npm run bench`: prints the figures the issues ask for, in one run on this machine. Not a test.
//   1. PKI: one node, and a 3-control-plane cluster (scripts/bench-pki.ts).
//   2. Machines: `up --no-kubernetes` for 1 and for 10 nodes (scripts/bench-up.ts).
//   3. A cold `up` of one node (node image and bundle cached) until a pod resolves a name through
//      CoreDNS; the no-op re-run of `up`.
//   4. `init` alone on a prepared node (binaries, containerd and images in place), against
//      `kubeadm init` (same module, same binaries, same images) in a fresh node of the same image,
//      prepared the same way, both until the node is Ready and CoreDNS is ready (same bridge CNI
//      configuration and Corefile); BENCH_INIT_RUNS pairs (default 3) and the ratio of each pair.
//   5. HA: `up --control-planes 3 --nodes 4` until every node is Ready (and its control-plane-join
//      phase from --timings: both joins together), its no-op re-run, and the
//      failover: the VIP holder killed (docker kill), until a write through the VIP succeeds; each
//      BENCH_HA_RUNS times (default 3), reported as min / median / max.
//   6. Lifecycle: `stop` + `start` of a 1-node cluster until a new pod resolves kubernetes.default,
//      and `node add` of a worker to a 1 + 1 cluster until the new node is Ready; each
//      BENCH_LIFECYCLE_RUNS times (default 3), reported as min / median / max.
//   7. Data plane: `up --nodes 3` from nothing until a pod on one worker reached a pod on the
//      other, and `image load` of a 50 MB image into the 3 nodes; BENCH_DATAPLANE_RUNS times.
//   8. Many SSH hosts: `status` and `preflight` on 1, 20 and 100 real sshd servers on loopback
//      ports (scripts/bench-fleet.ts), BENCH_FLEET_RUNS times (default 3), and the 100 / 1 ratio.
// Every cluster it makes carries a `kpt-bench-` name and is deleted at the end, also on failure.
// BENCH_SKIP=pki,up,cluster,kubeadm,ha,lifecycle,dataplane,fleet leaves parts out; BENCH_UP_NODES=1,10 sets the machine counts.
import { $ } from "zx";
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { loadavg, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { benchPki } from "./bench-pki.js";
import { benchUp } from "./bench-up.js";
import { benchFleet } from "./bench-fleet.js";
import { newPodResolvesDns } from "../test/helpers/dns-probe.js";
import { buildFixtureImage } from "../test/helpers/cluster-e2e.js";
import { bundleDir } from "../provisioner/paths.js";
import { DEFAULT_KUBERNETES_VERSION } from "../provisioner/constants.js";

$.verbose = false;
$.quiet = true;

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = join(ROOT, "bin", "kubeprov.js");
const skip = new Set((process.env.BENCH_SKIP ?? "").split(",").filter(Boolean));
const home = mkdtempSync(join(tmpdir(), "kpt-bench-"));
const env = { ...process.env, KUBEPROV_HOME: home, KUBECONFIG: join(home, "kubeconfig"), CI: "1" };
const kubectlBin = join(bundleDir(DEFAULT_KUBERNETES_VERSION), "bin", "kubectl");
const figures: Array<[string, string]> = [];

function note(label: string, value: string): void {
  figures.push([label, value]);
  process.stderr.write(`[bench] ${label}: ${value}\n`);
}
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

async function timed(args: string[]): Promise<number> {
  const t0 = performance.now();
  const r = await $({ env, nothrow: true })`node ${BIN} ${args}`;
  const ms = performance.now() - t0;
  if (r.exitCode !== 0) throw new Error(`kubeprov ${args.join(" ")} failed (exit ${r.exitCode}):\n${r.stderr}${r.stdout}`);
  return ms;
}

/** Like timed, and returns what the command wrote to stderr (where --timings goes). */
async function timedStderr(args: string[]): Promise<string> {
  const r = await $({ env, nothrow: true })`node ${BIN} ${args}`;
  if (r.exitCode !== 0) throw new Error(`kubeprov ${args.join(" ")} failed (exit ${r.exitCode}):\n${r.stderr}${r.stdout}`);
  return r.stderr;
}

async function kubeprovOut(args: string[]): Promise<string> {
  const r = await $({ env, nothrow: true })`node ${BIN} ${args}`;
  if (r.exitCode !== 0) throw new Error(`kubeprov ${args.join(" ")} failed (exit ${r.exitCode}):\n${r.stderr}`);
  return r.stdout;
}

/** Changed count of the last summary event of a `-o json` run. */
function changedOf(jsonLines: string): number {
  const summary = jsonLines
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l))
    .filter((e) => e.type === "summary")
    .pop();
  return summary?.changed ?? -1;
}

/** Runs a pod that resolves the kubernetes Service name through CoreDNS; resolves when it succeeded. */
async function dnsProbe(cluster: string): Promise<void> {
  const kubeconfig = join(home, `${cluster}.kubeconfig`);
  writeFileSync(kubeconfig, await kubeprovOut(["kubeconfig", "--name", cluster]), { mode: 0o600 });
  if ((await newPodResolvesDns(kubectlBin, kubeconfig, "kpt-bench-dns", 180_000)) === -1) throw new Error("the DNS probe pod did not succeed within 180 s");
}

/** The kubelet unit kubeadm's packages install (kubelet.service + 10-kubeadm.conf), for the kubeadm node. */
const KUBEADM_KUBELET_UNIT = `[Unit]
Description=kubelet
After=containerd.service
[Service]
Environment="KUBELET_KUBECONFIG_ARGS=--bootstrap-kubeconfig=/etc/kubernetes/bootstrap-kubelet.conf --kubeconfig=/etc/kubernetes/kubelet.conf"
Environment="KUBELET_CONFIG_ARGS=--config=/var/lib/kubelet/config.yaml"
EnvironmentFile=-/var/lib/kubelet/kubeadm-flags.env
ExecStart=/usr/local/bin/kubelet $KUBELET_KUBECONFIG_ARGS $KUBELET_CONFIG_ARGS $KUBELET_KUBEADM_ARGS
Restart=always
RestartSec=1
[Install]
WantedBy=multi-user.target
`;

function kubeadmConfig(node: string, ip: string): string {
  // The same choices kubeprov makes for a node container (DESIGN.md): cgroupfs, cgroup v1 allowed,
  // a resolv.conf without loopback, kube-proxy without conntrack sizing.
  return `apiVersion: kubeadm.k8s.io/v1beta4
kind: InitConfiguration
localAPIEndpoint: {advertiseAddress: ${ip}, bindPort: 6443}
nodeRegistration:
  name: ${node}
  criSocket: unix:///run/containerd/containerd.sock
---
apiVersion: kubeadm.k8s.io/v1beta4
kind: ClusterConfiguration
kubernetesVersion: ${DEFAULT_KUBERNETES_VERSION}
networking: {podSubnet: 10.244.0.0/16, serviceSubnet: 10.96.0.0/12, dnsDomain: cluster.local}
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: cgroupfs
failCgroupV1: false
resolvConf: /etc/kubeadm-resolv.conf
---
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
conntrack: {maxPerCore: 0}
`;
}

async function nodeOf(cluster: string): Promise<{ name: string; address: string; machine: string }> {
  const nodes = JSON.parse(await kubeprovOut(["node", "list", "--name", cluster, "-o", "json"]));
  return nodes[0];
}

async function benchCluster(): Promise<void> {
  const a = "kpt-bench-up";
  try {
    const t0 = performance.now();
    const upMs = await timed(["up", "--name", a, "--no-kubeconfig"]);
    await dnsProbe(a);
    const dnsMs = performance.now() - t0;
    note("cold up, 1 node (image and bundle cached), until up returns", secs(upMs));
    note("cold up, 1 node, until a pod resolved kubernetes.default through CoreDNS", secs(dnsMs));
    const t1 = performance.now();
    const out = await kubeprovOut(["up", "--name", a, "--no-kubeconfig", "-o", "json"]);
    note("no-op re-run of up (whole process)", `${secs(performance.now() - t1)}, ${changedOf(out)} changed`);
    const t2 = performance.now();
    const out2 = await kubeprovOut(["init", "--name", a, "-o", "json"]);
    note("no-op re-run of init (whole process)", `${secs(performance.now() - t2)}, ${changedOf(out2)} changed`);
  } finally {
    await $({ env, nothrow: true })`node ${BIN} delete --name ${a}`;
  }
}

/**
 * Polls, inside the node with its own kubectl and admin.conf, until the node is Ready and every
 * CoreDNS replica is ready: the end state both init figures are measured to.
 */
async function waitNodeAndDnsReady(machine: string, node: string, timeoutMs = 240_000): Promise<void> {
  const k = "kubectl --kubeconfig /etc/kubernetes/admin.conf --request-timeout=5s";
  const probe =
    `n=$(${k} get node ${node} -o jsonpath="{.status.conditions[?(@.type=='Ready')].status}" 2>/dev/null); ` +
    `d=$(${k} -n kube-system get deployment coredns -o jsonpath="{.status.readyReplicas}/{.spec.replicas}" 2>/dev/null); echo "$n $d"`;
  const deadline = performance.now() + timeoutMs;
  let last = "";
  while (performance.now() < deadline) {
    last = (await $({ nothrow: true })`docker exec ${machine} sh -c ${probe}`).stdout.trim();
    const m = /^True (\d+)\/(\d+)$/.exec(last);
    if (m && Number(m[1]) >= 1 && m[1] === m[2]) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${node}: not Ready with CoreDNS ready within ${timeoutMs / 1000} s (last: ${last || "no answer"})`);
}

interface InitFigures {
  returnedMs: number;
  initMs: number;
  kubeadmReturnedMs: number;
  kubeadmMs: number;
  /** Inside each init: from the start of its certificates phase to the end of its kubeconfig phase. */
  pkiMs: number;
  kubeadmPkiMs: number;
}

/** From `--timings`' phase table: the certs phase's start to the kubeconfig phase's end, ms. */
function pkiSpanOfTimings(stderr: string): number {
  const row = (phase: string) => {
    const m = new RegExp(`^\\s+${phase}\\s+([\\d.]+)\\s+([\\d.]+)`, "m").exec(stderr);
    if (!m) throw new Error(`no ${phase} row in --timings:\n${stderr.slice(-2000)}`);
    return { start: Number(m[1]), end: Number(m[2]) };
  };
  return (row("kubeconfig").end - row("certs").start) * 1000;
}

/**
 * kubeadm init inside the node, each line of its output stamped on arrival (kubeadm writes a line
 * at a time): its certs phase begins at "[certs] Using certificateDir folder" and its kubeconfig
 * phase ends at the first line of the phase after it.
 */
async function kubeadmInitStamped(machine: string): Promise<{ code: number | null; stderr: string; pkiMs: number }> {
  const child = spawn("docker", ["exec", machine, "kubeadm", "init", "--config", "/root/kubeadm.yaml", "--ignore-preflight-errors=all"], { stdio: ["ignore", "pipe", "pipe"] });
  const lines: Array<{ t: number; line: string }> = [];
  let partial = "";
  let stderr = "";
  child.stdout.on("data", (d: Buffer) => {
    const t = performance.now();
    const parts = (partial + d.toString("utf8")).split("\n");
    partial = parts.pop()!;
    for (const line of parts) lines.push({ t, line });
  });
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString("utf8")));
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  const start = lines.find((l) => l.line.startsWith("[certs] Using certificateDir"));
  const lastKubeconfig = lines.map((l) => l.line.startsWith("[kubeconfig]")).lastIndexOf(true);
  const next = lastKubeconfig >= 0 ? lines[lastKubeconfig + 1] : undefined;
  return { code, stderr, pkiMs: start && next ? next.t - start.t : Number.NaN };
}

async function initVsKubeadmOnce(): Promise<InitFigures> {
  const b = "kpt-bench-init";
  const c = "kpt-bench-kubeadm";
  // Both nodes use the same static bridge CNI configuration (kubeprov's `--cni bridge`), so neither
  // waits on a network add-on's rollout; both clocks stop when the node is Ready and CoreDNS is.
  try {
    // kubeprov: a fresh node, prepared (binaries, containerd, images), then init timed.
    await timed(["up", "--name", b, "--no-kubernetes", "--cni", "bridge"]);
    await timed(["init", "phase", "preflight", "--name", b]);
    await timed(["init", "phase", "prepare", "--name", b]);
    const nb = await nodeOf(b);
    const t0 = performance.now();
    const pkiMs = pkiSpanOfTimings(await timedStderr(["init", "--name", b, "--timings"]));
    const returnedMs = performance.now() - t0;
    await waitNodeAndDnsReady(nb.machine, nb.name);
    const initMs = performance.now() - t0;
    const conflist = (await $`docker exec ${nb.machine} sh -c ${"cat /etc/cni/net.d/*.conflist"}`).stdout;
    // The node containers have no upstream nameserver (Docker's is on loopback), so kubeprov gives
    // CoreDNS a cluster-only Corefile; kubeadm's forwards to an empty resolv.conf and never starts.
    const corefile = (await $`docker exec ${nb.machine} kubectl --kubeconfig /etc/kubernetes/admin.conf -n kube-system get configmap coredns -o ${"jsonpath={.data.Corefile}"}`).stdout;
    await $({ env, nothrow: true })`node ${BIN} delete --name ${b}`;

    // kubeadm: a fresh node of the same image, prepared by the same phases, kubeadm's kubelet unit.
    await timed(["up", "--name", c, "--no-kubernetes", "--cni", "bridge"]);
    await timed(["init", "phase", "preflight", "--name", c]);
    await timed(["init", "phase", "prepare", "--name", c]);
    const node = await nodeOf(c);
    await $`docker cp ${join(bundleDir(DEFAULT_KUBERNETES_VERSION), "bin", "kubeadm")} ${node.machine}:/usr/local/bin/kubeadm`;
    await $({ input: KUBEADM_KUBELET_UNIT })`docker exec -i ${node.machine} sh -c ${"cat > /etc/systemd/system/kubelet.service && systemctl daemon-reload && systemctl enable kubelet"}`;
    await $({ input: kubeadmConfig(node.name, node.address) })`docker exec -i ${node.machine} sh -c ${"cat > /root/kubeadm.yaml && : > /etc/kubeadm-resolv.conf"}`;
    const t1 = performance.now();
    const r = await kubeadmInitStamped(node.machine);
    const kubeadmReturnedMs = performance.now() - t1;
    if (r.code !== 0) throw new Error(`kubeadm init failed:\n${r.stderr.slice(-3000)}`);
    // What a kubeadm user does next: the same Corefile, and a network add-on (here the same bridge
    // configuration kubeprov wrote).
    const applyCorefile = "kubectl --kubeconfig /etc/kubernetes/admin.conf -n kube-system create configmap coredns --from-file=Corefile=/dev/stdin --dry-run=client -o yaml | kubectl --kubeconfig /etc/kubernetes/admin.conf apply -f -";
    await $({ input: corefile })`docker exec -i ${node.machine} sh -c ${applyCorefile}`;
    await $({ input: conflist })`docker exec -i ${node.machine} sh -c ${"mkdir -p /etc/cni/net.d && cat > /etc/cni/net.d/10-bridge.conflist"}`;
    await waitNodeAndDnsReady(node.machine, node.name);
    const kubeadmMs = performance.now() - t1;
    return { returnedMs, initMs, kubeadmReturnedMs, kubeadmMs, pkiMs, kubeadmPkiMs: r.pkiMs };
  } finally {
    await $({ env, nothrow: true })`node ${BIN} delete --name ${b}`;
    await $({ env, nothrow: true })`node ${BIN} delete --name ${c}`;
  }
}

/** BENCH_INIT_RUNS (default 3) pairs, each on fresh nodes: kubeprov init, then kubeadm init. */
async function benchInitVsKubeadm(): Promise<void> {
  const runs: InitFigures[] = [];
  for (let i = 0; i < Number(process.env.BENCH_INIT_RUNS ?? 3); i++) runs.push(await initVsKubeadmOnce());
  note("kubeprov init on a prepared node, until it returns", stats(runs.map((r) => r.returnedMs)));
  note("kubeprov init on a prepared node, until the node is Ready and CoreDNS ready (bridge CNI)", stats(runs.map((r) => r.initMs)));
  note("kubeadm init on a prepared node, until it returns", stats(runs.map((r) => r.kubeadmReturnedMs)));
  note("kubeadm init on a prepared node, until the node is Ready and CoreDNS ready (same bridge CNI)", stats(runs.map((r) => r.kubeadmMs)));
  note("inside kubeprov init: its certificates and kubeconfigs (certs phase start to kubeconfig phase end, --timings)", stats(runs.map((r) => r.pkiMs)));
  note("inside kubeadm init: its certificates and kubeconfigs ([certs] line to the first line after [kubeconfig])", stats(runs.map((r) => r.kubeadmPkiMs)));
  const ratios = runs.map((r) => r.initMs / r.kubeadmMs).sort((a, b) => a - b);
  note("ratio kubeprov / kubeadm of each pair, both to node Ready and CoreDNS ready", `min ${ratios[0].toFixed(2)} / median ${ratios[Math.floor(ratios.length / 2)].toFixed(2)} / max ${ratios[ratios.length - 1].toFixed(2)}`);
}

const stats = (xs: number[]) => {
  const v = [...xs].sort((a, b) => a - b);
  return `min ${secs(v[0])} / median ${secs(v[Math.floor(v.length / 2)])} / max ${secs(v[v.length - 1])} (${v.length} runs)`;
};

/** The control plane of `cluster` that holds `vip` on eth0 (docker exec: the truth on each node). */
async function vipHolder(machines: string[], vip: string): Promise<string | undefined> {
  for (const m of machines) {
    const r = await $({ nothrow: true })`docker exec ${m} ip -4 -o addr show dev eth0`;
    if (r.stdout.includes(` ${vip}/`)) return m;
  }
  return undefined;
}

const READY_JSONPATH = `jsonpath={range .items[*]}{.status.conditions[?(@.type=='Ready')].status}{"\\n"}{end}`;

async function benchHa(): Promise<void> {
  const runs = Number(process.env.BENCH_HA_RUNS ?? 3);
  const upMs: number[] = [];
  const noopMs: number[] = [];
  const failoverMs: number[] = [];
  const startMs: number[] = [];
  const joinMs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const name = `kpt-bench-ha${i}`;
    try {
      const t0 = performance.now();
      const timings = await timedStderr(["up", "--name", name, "--control-planes", "3", "--nodes", "4", "--no-kubeconfig", "--timings"]);
      // The control-plane-join phase, from the first joining member's etcd learner to the last
      // joined control plane marked: both joins together (etcd one at a time, the rest overlapping).
      const joinPhase = /^\s*control-plane-join\s+[\d.]+\s+[\d.]+\s+([\d.]+)$/m.exec(timings);
      if (joinPhase) joinMs.push(Number(joinPhase[1]) * 1000);
      const kubeconfig = join(home, `${name}.kubeconfig`);
      writeFileSync(kubeconfig, await kubeprovOut(["kubeconfig", "--name", name]), { mode: 0o600 });
      await allReady(kubeconfig, 4, 600_000);
      upMs.push(performance.now() - t0);
      const t1 = performance.now();
      const out = await kubeprovOut(["up", "--name", name, "--control-planes", "3", "--nodes", "4", "--no-kubeconfig", "-o", "json"]);
      noopMs.push(performance.now() - t1);
      if (changedOf(out) !== 0) note(`HA no-op re-run ${i}`, `${changedOf(out)} changed (expected 0)`);
      const nodes = JSON.parse(await kubeprovOut(["node", "list", "--name", name, "-o", "json"])) as Array<{ machine: string; roles: string[] }>;
      const cps = nodes.filter((n) => n.roles.includes("control-plane")).map((n) => n.machine);
      const vip = /virtualIP: (\S+)/.exec(await $`cat ${join(home, "clusters", name, "cluster.yaml")}`.then((r) => r.stdout))?.[1] ?? "";
      const holder = await vipHolder(cps, vip);
      if (!holder) throw new Error(`${name}: nobody holds the VIP ${vip}`);
      // A write started every 200 ms; the first to succeed marks the failover's end.
      const t2 = performance.now();
      await $`docker kill ${holder}`;
      let done = -1;
      const attempts: Promise<void>[] = [];
      for (let k = 0; done < 0 && performance.now() - t2 < 60_000; k++) {
        attempts.push(
          $({ nothrow: true })`${kubectlBin} --kubeconfig ${kubeconfig} --request-timeout=1500ms create configmap bench-failover-${k}`.then((r) => {
            if (r.exitCode === 0 && done < 0) done = performance.now() - t2;
          }),
        );
        await new Promise((r) => setTimeout(r, 200));
      }
      await Promise.all(attempts);
      if (done < 0) throw new Error(`${name}: no write through the VIP within 60 s of killing ${holder}`);
      failoverMs.push(done);
      // The killed control plane back, then the whole cluster stopped and started: `start` returns
      // once the API, every node and CoreDNS are back.
      await $`docker start ${holder}`;
      await allReady(kubeconfig, 4, 300_000);
      await timed(["stop", "--name", name]);
      startMs.push(await timed(["start", "--name", name]));
    } finally {
      await $({ env, nothrow: true })`node ${BIN} delete --name ${name}`;
    }
  }
  note("HA up --control-planes 3 --nodes 4, until every node is Ready", stats(upMs));
  note("HA control-plane-join phase: the two control-plane joins together (--timings)", stats(joinMs));
  note("HA no-op re-run of up (3 + 1 nodes, whole process)", stats(noopMs));
  note("HA failover: docker kill of the VIP holder until a write through the VIP succeeds", stats(failoverMs));
  note("HA start of the stopped 3 + 1 cluster until the API, every node and CoreDNS are back", stats(startMs));
}

/** Waits until `count` nodes are Ready (fresh or not), or throws after limitMs. */
async function allReady(kubeconfig: string, count: number, limitMs: number): Promise<void> {
  const t0 = performance.now();
  for (;;) {
    const r = await $({ nothrow: true })`${kubectlBin} --kubeconfig ${kubeconfig} get nodes -o ${READY_JSONPATH}`;
    if (r.stdout.split("\n").filter((l) => l === "True").length === count) return;
    if (performance.now() - t0 > limitMs) throw new Error(`not ${count} nodes Ready within ${limitMs / 1000} s`);
    await new Promise((r2) => setTimeout(r2, 500));
  }
}

const loadAvg = () => loadavg().map((l) => l.toFixed(1)).join(" ");

/** Ready status of node `name` ("True" when Ready). */
async function nodeReady(kubeconfig: string, name: string): Promise<boolean> {
  const r = await $({ nothrow: true })`${kubectlBin} --kubeconfig ${kubeconfig} --request-timeout=5s get node ${name} -o ${"jsonpath={.status.conditions[?(@.type=='Ready')].status}"}`;
  return r.stdout.trim() === "True";
}

async function benchLifecycle(): Promise<void> {
  const runs = Number(process.env.BENCH_LIFECYCLE_RUNS ?? 3);
  // (1) A stopped one-node cluster started again: timed from the start command until a pod created
  // once start returned resolved kubernetes.default (start's own wait, then the probe's).
  const a = "kpt-bench-restart";
  const restartMs: number[] = [];
  const startMs: number[] = [];
  try {
    await timed(["up", "--name", a, "--no-kubeconfig"]);
    const kubeconfig = join(home, `${a}.kubeconfig`);
    writeFileSync(kubeconfig, await kubeprovOut(["kubeconfig", "--name", a]), { mode: 0o600 });
    for (let i = 0; i < runs; i++) {
      await timed(["stop", "--name", a]);
      const load = loadAvg();
      const t0 = performance.now();
      startMs.push(await timed(["start", "--name", a]));
      const probe = await newPodResolvesDns(kubectlBin, kubeconfig, `kpt-bench-restart-${i}`, 180_000);
      if (probe === -1) throw new Error(`${a}: no new pod resolved kubernetes.default within 180 s of start (run ${i})`);
      restartMs.push(performance.now() - t0);
      process.stderr.write(`[bench] restart run ${i}: start ${secs(startMs[i])}, to DNS ${secs(restartMs[i])} (load ${load})\n`);
    }
  } finally {
    await $({ env, nothrow: true })`node ${BIN} delete --name ${a}`;
  }
  note("restart of a 1-node cluster: start (after stop) until start returns", stats(startMs));
  note("restart of a 1-node cluster: start (after stop) until a new pod resolved kubernetes.default", stats(restartMs));

  // (2) `node add` of a worker to a 1 + 1 cluster until the new node is Ready; the node is deleted
  // again after each run so that every run adds to the same 1 + 1 cluster.
  const b = "kpt-bench-add";
  const addMs: number[] = [];
  try {
    await timed(["up", "--name", b, "--nodes", "2", "--no-kubeconfig"]);
    const kubeconfig = join(home, `${b}.kubeconfig`);
    writeFileSync(kubeconfig, await kubeprovOut(["kubeconfig", "--name", b]), { mode: 0o600 });
    for (let i = 0; i < runs; i++) {
      const before = new Set((JSON.parse(await kubeprovOut(["node", "list", "--name", b, "-o", "json"])) as Array<{ name: string }>).map((n) => n.name));
      const load = loadAvg();
      const t0 = performance.now();
      await timed(["node", "add", "--name", b]);
      const added = (JSON.parse(await kubeprovOut(["node", "list", "--name", b, "-o", "json"])) as Array<{ name: string }>).map((n) => n.name).find((n) => !before.has(n));
      if (!added) throw new Error(`${b}: node add made no new node`);
      while (!(await nodeReady(kubeconfig, added))) {
        if (performance.now() - t0 > 600_000) throw new Error(`${b}: ${added} not Ready within 600 s`);
        await new Promise((r) => setTimeout(r, 250));
      }
      addMs.push(performance.now() - t0);
      process.stderr.write(`[bench] node add run ${i}: ${added} Ready after ${secs(addMs[i])} (load ${load})\n`);
      await timed(["node", "delete", added, "--name", b]);
    }
  } finally {
    await $({ env, nothrow: true })`node ${BIN} delete --name ${b}`;
  }
  note("node add of a worker to a 1 + 1 cluster, until the new node is Ready", stats(addMs));
  note("load average after the lifecycle runs", loadAvg());
}

/** Phase and pod IP of a pod ("Succeeded 10.244.1.3"). */
async function podState(kubeconfig: string, name: string): Promise<[string, string]> {
  const r = await $({ nothrow: true })`${kubectlBin} --kubeconfig ${kubeconfig} --request-timeout=5s get pod ${name} -o ${"jsonpath={.status.phase} {.status.podIP}"}`;
  const [phase = "", ip = ""] = r.stdout.trim().split(" ");
  return [phase, ip];
}

async function untilPod(kubeconfig: string, name: string, want: (phase: string, ip: string) => boolean, limitMs: number): Promise<string> {
  const t0 = performance.now();
  for (;;) {
    const [phase, ip] = await podState(kubeconfig, name);
    if (want(phase, ip)) return ip;
    if (phase === "Failed") throw new Error(`pod ${name} failed`);
    if (performance.now() - t0 > limitMs) throw new Error(`pod ${name} not there within ${limitMs / 1000} s (phase ${phase || "none"})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The data plane: `up --nodes 3` (1 control plane + 2 workers, flannel host-gw) from nothing until
 * a pod on one worker has fetched an answer from a pod on the other (the echo test image loaded
 * with `image load` on the way, as a user would); then `image load` of a fresh 50 MB image into
 * the 3 nodes. BENCH_DATAPLANE_RUNS times (default 3).
 */
async function benchDataplane(): Promise<void> {
  const runs = Number(process.env.BENCH_DATAPLANE_RUNS ?? 3);
  const name = "kpt-bench-net";
  const echo = `kpt-echo:${name}`;
  const work = mkdtempSync(join(tmpdir(), "kpt-bench-img-"));
  const reachMs: number[] = [];
  const loadMs: number[] = [];
  try {
    await buildFixtureImage("echo", echo, name, work);
    for (let i = 0; i < runs; i++) {
      const load = loadAvg();
      const t0 = performance.now();
      await timed(["up", "--name", name, "--nodes", "3", "--no-kubeconfig"]);
      const kubeconfig = join(home, `${name}.kubeconfig`);
      writeFileSync(kubeconfig, await kubeprovOut(["kubeconfig", "--name", name]), { mode: 0o600 });
      await timed(["image", "load", "--name", name, echo]);
      const pod = (p: string, node: string, args: string[]) =>
        JSON.stringify({ apiVersion: "v1", kind: "Pod", metadata: { name: p }, spec: { nodeName: node, restartPolicy: "Never", containers: [{ name: "echo", image: `docker.io/library/${echo}`, imagePullPolicy: "Never", args }] } });
      await $({ input: pod("srv", `${name}-worker2`, ["serve"]) })`${kubectlBin} --kubeconfig ${kubeconfig} apply -f -`;
      const ip = await untilPod(kubeconfig, "srv", (phase, addr) => phase === "Running" && !!addr, 300_000);
      await $({ input: pod("cli", `${name}-worker`, ["get", `http://${ip}:8080/`]) })`${kubectlBin} --kubeconfig ${kubeconfig} apply -f -`;
      await untilPod(kubeconfig, "cli", (phase) => phase === "Succeeded", 120_000);
      reachMs.push(performance.now() - t0);
      // A 50 MB layer of random bytes, new in each run, so no node has it yet.
      const blobDir = join(work, `blob${i}`);
      mkdirSync(blobDir);
      writeFileSync(join(blobDir, "blob"), randomBytes(50 * 1024 * 1024));
      writeFileSync(join(blobDir, "Dockerfile"), "FROM scratch\nCOPY blob /blob\n");
      const big = `kpt-bench-50mb:${name}-${i}`;
      await $`docker build -q --label io.kubeprov.cluster=${name} -t ${big} ${blobDir}`;
      loadMs.push(await timed(["image", "load", "--name", name, big]));
      await $({ nothrow: true })`docker rmi -f ${big}`;
      process.stderr.write(`[bench] data plane run ${i}: pod to pod across workers ${secs(reachMs[i]!)}, 50 MB image load ${secs(loadMs[i]!)} (load ${load})\n`);
      await $({ env, nothrow: true })`node ${BIN} delete --name ${name}`;
    }
  } finally {
    await $({ env, nothrow: true })`node ${BIN} delete --name ${name}`;
    await $({ nothrow: true })`docker rmi -f ${echo}`;
    rmSync(work, { recursive: true, force: true });
  }
  note("up --nodes 3 (flannel) from nothing until a pod on one worker reached a pod on the other", stats(reachMs));
  note("image load of a 50 MB image into 3 nodes", stats(loadMs));
}

try {
  if (!skip.has("pki")) {
    const p = await benchPki(5, { compareKubeadm: true });
    for (const [k, v] of Object.entries(p)) {
      if (k === "loadAverage") note("load average during the PKI runs", String(v));
      else if (k !== "runs" && typeof v === "number") note(`pki ${k} (median of ${p.runs})`, `${v.toFixed(0)} ms`);
    }
  }
  if (!skip.has("up")) {
    const nodes = (process.env.BENCH_UP_NODES ?? "1,10").split(",").map(Number);
    for (const r of await benchUp({ nodes, log: (m) => process.stderr.write(`[bench-up] ${m}\n`) })) {
      note(`up --no-kubernetes, ${r.nodes} node(s)`, `${secs(r.upMs)} (re-up ${secs(r.reupMs)}, delete ${secs(r.deleteMs)})`);
    }
  }
  if (!skip.has("cluster")) await benchCluster();
  if (!skip.has("kubeadm")) await benchInitVsKubeadm();
  if (!skip.has("ha")) await benchHa();
  if (!skip.has("lifecycle")) await benchLifecycle();
  if (!skip.has("dataplane")) await benchDataplane();
  if (!skip.has("fleet")) {
    const figs = await benchFleet({ runs: Number(process.env.BENCH_FLEET_RUNS ?? 3), log: (m) => process.stderr.write(`[bench-fleet] ${m}\n`) });
    for (const f of figs) note(`${f.command} on ${f.hosts} SSH host(s) (real sshd on loopback, whole CLI)`, stats(f.runs));
    for (const command of ["status", "preflight"] as const) {
      const med = (n: number) => [...figs.find((f) => f.command === command && f.hosts === n)!.runs].sort((a, b) => a - b)[1]!;
      note(`${command}: 100 hosts / 1 host (medians)`, (med(100) / med(1)).toFixed(2));
    }
  }
} finally {
  rmSync(home, { recursive: true, force: true });
  process.stdout.write("\nkubeprov benchmark (one run; this machine: 2 cores)\n");
  const width = Math.max(...figures.map(([k]) => k.length), 10);
  for (const [k, v] of figures) process.stdout.write(`  ${k.padEnd(width)}  ${v}\n`);
}
