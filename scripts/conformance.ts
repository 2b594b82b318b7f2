// `npm run conformance [-- --cluster NAME] [--focus RE] [--skip RE] [--procs N]
//   [--nodes N --control-planes M --name NAME --keep] [--out DIR] [--e2e-binary FILE] [--timeout 3h]`:
// runs the Kubernetes conformance suite ([Conformance] specs, e2e.test and ginkgo built by
// scripts/build-conformance.sh into ~/.cache/kubeprov/conformance/<version>/) against a kubeprov
// cluster: the one --cluster names, or a fresh one made by `kubeprov up` and deleted afterwards.
// Before any test traffic, packets from the clusters' networks leaving through the default-route
// interface are rejected in Docker's DOCKER-USER chain (a Service address kube-proxy has not yet
// translated, or an image pull, would otherwise leave this machine); the rules it added are removed
// at the end. The suite's test images (images.txt) are loaded into every node first; a fresh
// cluster also gets a local registry (Debian's docker-registry in a container on the cluster's
// Docker network, REGISTRY_IMAGE) holding the same images and named as the mirror of the registries
// they come from, for the specs whose pods force a pull (imagePullPolicy: Always); it is removed
// at the end. Prints `N passed, M failed, K skipped`, the failed specs, and the JUnit file.
// Exit: 0 all ran specs passed, 1 a spec failed or the run broke, 2 bad arguments.
import { execa } from "execa";
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync, readdirSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import { parse } from "yaml";
import { DEFAULT_KUBERNETES_VERSION } from "../provisioner/constants.js";
import { networkName } from "../provisioner/drivers/docker/plan.js";
import { imageSource } from "../provisioner/images/registries.js";
export { imageSource };
import { bundleDir, cacheDir, clusterDir, packageRoot } from "../provisioner/paths.js";

class Usage extends Error {}

export interface Options {
  cluster?: string;
  /** The fresh cluster's name (default conformance-<random>). */
  name?: string;
  focus?: string;
  skip?: string;
  procs: number;
  nodes: number;
  controlPlanes: number;
  keep: boolean;
  out: string;
  e2eBinary?: string;
  timeout: string;
}

/** The default skip: specs that need a Serial or Disruptive slot (they run alone, or break nodes). */
export const DEFAULT_SKIP = String.raw`\[Serial\]|\[Disruptive\]`;

export function parseArgs(argv: string[], now = new Date()): Options {
  const o: Options = {
    procs: 4,
    nodes: 1,
    controlPlanes: 1,
    keep: false,
    out: join(cacheDir(), "conformance", "results", now.toISOString().replace(/[:.]/g, "-")),
    timeout: "3h",
  };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith("--")) throw new Usage(`${flag} needs a value`);
    return v;
  };
  const count = (v: string, flag: string, min: number): number => {
    if (!/^\d+$/.test(v) || Number(v) < min) throw new Usage(`${flag} ${JSON.stringify(v)}: expected a whole number >= ${min}`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case "--cluster": o.cluster = value(i++, a); break;
      case "--name": o.name = value(i++, a); break;
      case "--focus": o.focus = value(i++, a); break;
      case "--skip": o.skip = value(i++, a); break;
      case "--procs": o.procs = count(value(i++, a), a, 1); break;
      case "--nodes": o.nodes = count(value(i++, a), a, 1); break;
      case "--control-planes": o.controlPlanes = count(value(i++, a), a, 1); break;
      case "--out": o.out = resolve(value(i++, a)); break;
      case "--e2e-binary": o.e2eBinary = resolve(value(i++, a)); break;
      case "--timeout": o.timeout = value(i++, a); break;
      case "--keep": o.keep = true; break;
      default: throw new Usage(`unknown argument ${JSON.stringify(a)}`);
    }
  }
  for (const [flag, re] of [["--focus", o.focus], ["--skip", o.skip]] as const) {
    if (re === undefined) continue;
    try {
      new RegExp(re);
    } catch (e) {
      throw new Usage(`${flag} ${JSON.stringify(re)}: not a regular expression (${(e as Error).message})`);
    }
  }
  if (o.controlPlanes > o.nodes) o.nodes = o.controlPlanes;
  if (o.cluster && ["--nodes", "--control-planes", "--name", "--keep"].some((f) => argv.includes(f))) {
    throw new Usage("--nodes, --control-planes, --name and --keep are about a fresh cluster; they cannot be used with --cluster");
  }
  return o;
}

const log = (m: string) => process.stderr.write(`[conformance ${new Date().toISOString().slice(11, 19)}] ${m}\n`);

async function kubeprov(args: string[], timeoutMs = 20 * 60_000): Promise<string> {
  const r = await execa(process.execPath, [join(packageRoot(), "bin", "kubeprov.js"), ...args], { reject: false, timeout: timeoutMs, stdin: "ignore" });
  if (r.exitCode !== 0) throw new Error(`kubeprov ${args.join(" ")} failed (exit ${r.exitCode}):\n${String(r.stderr).slice(-3000)}`);
  return String(r.stdout);
}

// --- the egress block ---------------------------------------------------------------------

/** One DOCKER-USER rule: packets from `source` out of `iface` get `target`. */
export interface EgressRule {
  source: string;
  target: "REJECT" | "DROP";
}
const ruleArgs = (iface: string, r: EgressRule) => ["DOCKER-USER", "-o", iface, "-s", r.source, "-j", r.target];

/**
 * Adds each rule DOCKER-USER lacks (first in the chain) and returns the ones it added, so that only
 * those are removed afterwards: rules someone else put there stay.
 */
export async function blockEgress(iface: string, rules: EgressRule[]): Promise<EgressRule[]> {
  const added: EgressRule[] = [];
  await execa("iptables", ["-N", "DOCKER-USER"], { reject: false });
  for (const r of rules) {
    const has = await execa("iptables", ["-C", ...ruleArgs(iface, r)], { reject: false });
    if (has.exitCode === 0) continue;
    await execa("iptables", ["-I", ...ruleArgs(iface, r)]);
    added.push(r);
  }
  return added;
}

export async function unblockEgress(iface: string, added: EgressRule[]): Promise<void> {
  for (const r of added) await execa("iptables", ["-D", ...ruleArgs(iface, r)], { reject: false });
}

export async function defaultRouteInterface(): Promise<string | undefined> {
  const r = await execa("ip", ["route", "show", "default"], { reject: false });
  return String(r.stdout).split("\n")[0]?.match(/\bdev (\S+)/)?.[1];
}

/**
 * What must not leave: the nodes' networks (REJECT: the ICMP answer goes back to our own container)
 * and the pods' subnet (DROP: this machine has no route back to pods, so an answer would itself
 * leave). The docker driver's node networks are all inside 10.213.0.0/16; a cluster's own networks
 * and pod subnet are added when they lie elsewhere.
 */
export function egressRules(nodeNetworks: string[], podSubnets: string[], covered: EgressRule[] = []): EgressRule[] {
  const rules: EgressRule[] = [];
  const taken = [...covered];
  for (const [list, target] of [[nodeNetworks, "REJECT"], [podSubnets, "DROP"]] as const) {
    for (const s of list) {
      // A network inside one already blocked needs no rule of its own.
      if (taken.some((r) => cidrContains(r.source, s))) continue;
      rules.push({ source: s, target });
      taken.push({ source: s, target });
    }
  }
  return rules;
}

function ipv4(a: string): number | undefined {
  const p = a.split(".").map(Number);
  if (p.length !== 4 || p.some((x) => !Number.isInteger(x) || x < 0 || x > 255)) return undefined;
  return ((p[0] << 24) >>> 0) + (p[1] << 16) + (p[2] << 8) + p[3];
}

/** Whether IPv4 network `inner` (a.b.c.d/n) lies inside `outer`; false for anything not IPv4. */
export function cidrContains(outer: string, inner: string): boolean {
  const [oa, ob] = outer.split("/");
  const [ia, ib] = inner.split("/");
  const o = ipv4(oa), i = ipv4(ia), on = Number(ob), inn = Number(ib);
  if (o === undefined || i === undefined || !(on >= 0 && on <= 32) || !(inn >= 0 && inn <= 32) || inn < on) return false;
  const mask = on === 0 ? 0 : (~0 << (32 - on)) >>> 0;
  return ((o & mask) >>> 0) === ((i & mask) >>> 0);
}

async function clusterNetworks(name: string): Promise<{ nodes: string[]; pods: string[] }> {
  const ids = String((await execa("docker", ["network", "ls", "-q", "--filter", `label=io.kubeprov.cluster=${name}`])).stdout).split("\n").filter(Boolean);
  const nodes: string[] = [];
  for (const id of ids) {
    const r = await execa("docker", ["network", "inspect", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}", id]);
    nodes.push(...String(r.stdout).split(/\s+/).filter((s) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(s)));
  }
  const file = join(clusterDir(name), "cluster.yaml");
  const pods: string[] = [];
  if (existsSync(file)) {
    const spec = (parse(readFileSync(file, "utf8")) as { spec?: { networking?: { podSubnet?: string } } }).spec;
    if (spec?.networking?.podSubnet) pods.push(spec.networking.podSubnet);
  }
  return { nodes, pods };
}

// --- the local registry --------------------------------------------------------------------

/** The registry's image, built by scripts/build-conformance.sh from templates/conformance/Dockerfile.registry. */
export const REGISTRY_IMAGE = "kubeprov/conformance-registry:2.8";
/** The port it serves plain HTTP on, inside its container. */
export const REGISTRY_PORT = 5000;
/** Label on the registry's container (its value the cluster's name), so leftovers can be found. */
export const REGISTRY_LABEL = "io.kubeprov.conformance-registry";

/** The registry container's name, also its host name on the cluster's network. */
export function registryContainerName(cluster: string): string {
  return `${cluster}-registry`;
}

export interface RegistryPlan {
  /** The registries the images name, each to be mirrored by the local registry. */
  registries: string[];
  /** Each image and the name it is pushed under (path:tag, without a registry). */
  pushes: Array<{ image: string; path: string }>;
}

/**
 * What the local registry must hold for `images`: one mirror serves every registry they name, so two
 * images that share a path but come from different registries cannot both be served (an error).
 */
export function registryPlan(images: readonly string[]): RegistryPlan {
  const registries: string[] = [];
  const pushes: RegistryPlan["pushes"] = [];
  const from = new Map<string, string>();
  for (const image of images) {
    const { registry, path } = imageSource(image);
    const had = from.get(path);
    if (had !== undefined && had !== registry) throw new Error(`images ${had}/${path} and ${registry}/${path} would share one name in the local registry`);
    if (had !== undefined) continue;
    from.set(path, registry);
    if (!registries.includes(registry)) registries.push(registry);
    pushes.push({ image, path });
  }
  return { registries, pushes };
}

/** `kubeprov up` flags naming the local registry (reached as `host`) the mirror of each registry. */
export function mirrorFlags(registries: readonly string[], host: string): string[] {
  return registries.flatMap((r) => ["--registry-mirror", `${r}=http://${host}`]);
}

async function docker(args: string[], timeoutMs = 10 * 60_000): Promise<string> {
  const r = await execa("docker", args, { reject: false, timeout: timeoutMs, stdin: "ignore" });
  if (r.exitCode !== 0) throw new Error(`docker ${args.join(" ")} failed (exit ${r.exitCode}): ${String(r.stderr).slice(-2000)}`);
  return String(r.stdout);
}

/**
 * Starts the registry on the cluster's network (its host name there: registryContainerName) with its
 * port published on loopback only, for the pushes from this machine's Docker, and waits until it
 * answers. Returns the loopback address (127.0.0.1:PORT); Docker pushes to loopback over plain HTTP.
 */
async function startRegistry(cluster: string): Promise<string> {
  const name = registryContainerName(cluster);
  // One a killed run of the same cluster left behind (found by its label only).
  const stale = (await docker(["ps", "-aq", "--filter", `label=${REGISTRY_LABEL}=${cluster}`])).split("\n").filter(Boolean);
  if (stale.length) await docker(["rm", "-f", "-v", ...stale]);
  await docker(["run", "-d", "--name", name, "--hostname", name, "--network", networkName(cluster), "--label", `${REGISTRY_LABEL}=${cluster}`, "-p", `127.0.0.1::${REGISTRY_PORT}`, REGISTRY_IMAGE]);
  const local = (await docker(["port", name, `${REGISTRY_PORT}/tcp`])).split("\n").find((l) => l.startsWith("127.0.0.1:"));
  if (!local) throw new Error(`registry ${name}: no loopback port published`);
  for (let i = 0; i < 100; i++) {
    const ok = await fetch(`http://${local}/v2/`).then((r) => r.ok, () => false);
    if (ok) return local;
    await new Promise((r) => setTimeout(r, 100));
  }
  const logs = await execa("docker", ["logs", "--tail", "20", name], { reject: false });
  throw new Error(`registry ${name} did not answer on ${local} within 10 s: ${String(logs.stdout)}${String(logs.stderr)}`);
}

/**
 * Pushes each image into the registry at `local` under its path, through a temporary tag kept in
 * `tags` until it is removed (so that a run interrupted in between can remove it).
 */
async function pushImages(local: string, pushes: RegistryPlan["pushes"], tags: Set<string>): Promise<void> {
  for (const p of pushes) {
    const tag = `${local}/${p.path}`;
    tags.add(tag);
    await docker(["tag", p.image, tag]);
    try {
      await docker(["push", "-q", tag]);
    } finally {
      await execa("docker", ["rmi", tag], { reject: false });
      tags.delete(tag);
    }
  }
}

/** Removes the registry's container (and its storage): nothing else of it exists. */
async function removeRegistry(cluster: string): Promise<void> {
  await execa("docker", ["rm", "-f", "-v", registryContainerName(cluster)], { reject: false });
}

// --- the JUnit report ----------------------------------------------------------------------

export interface SpecResult {
  name: string;
  state: "passed" | "failed" | "skipped";
  seconds: number;
  message?: string;
}

const unescapeXml = (s: string) =>
  s.replace(/&lt;/g, "<").replace(/&gt;/g, ">").replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&#x([0-9a-fA-F]+);/g, (_, h) => String.fromCodePoint(parseInt(h, 16))).replace(/&#(\d+);/g, (_, d) => String.fromCodePoint(Number(d))).replace(/&amp;/g, "&");

/** The specs of a JUnit file as ginkgo writes it (one <testcase> each; <failure>/<error> or <skipped> inside). */
export function parseJunit(xml: string): SpecResult[] {
  const out: SpecResult[] = [];
  const re = /<testcase\b([^>]*?)(\/>|>([\s\S]*?)<\/testcase>)/g;
  for (const m of xml.matchAll(re)) {
    const attrs = m[1];
    const body = m[3] ?? "";
    // "[It] " leads every spec's name (ginkgo names the node type); the spec's own text follows.
    const name = unescapeXml(attrs.match(/\bname="([^"]*)"/)?.[1] ?? "").replace(/^\[It\] /, "");
    const seconds = Number(attrs.match(/\btime="([^"]*)"/)?.[1] ?? 0);
    // ginkgo's own suite set-up and tear-down nodes are reported as test cases too.
    if (/^\[(SynchronizedBeforeSuite|SynchronizedAfterSuite|BeforeSuite|AfterSuite|ReportAfterSuite|ReportBeforeSuite)\]/.test(name)) {
      if (/<(failure|error)\b/.test(body)) out.push({ name, state: "failed", seconds, message: failureMessage(body) });
      continue;
    }
    if (/<(failure|error)\b/.test(body)) out.push({ name, state: "failed", seconds, message: failureMessage(body) });
    else if (/<skipped\b/.test(body) || /\bstatus="skipped"/.test(attrs)) out.push({ name, state: "skipped", seconds });
    else out.push({ name, state: "passed", seconds });
  }
  return out;
}

function failureMessage(body: string): string {
  const m = body.match(/<(?:failure|error)\b[^>]*\bmessage="([^"]*)"[^>]*>([^<]*)/);
  // ginkgo leaves the attribute empty for some failures; the element's text holds the same words.
  const text = m?.[1] || m?.[2] || "";
  return unescapeXml(text).replace(/^\[FAILED\] /, "").split("\n").slice(0, 3).join(" ").slice(0, 400);
}

/**
 * The counts: specs that ran and passed or failed, and the [Conformance] specs that did not run
 * (ginkgo also lists every spec its filters left out as skipped: the suite's thousands of others).
 */
export function summarize(specs: SpecResult[]): { passed: number; failed: number; skipped: number; failures: SpecResult[] } {
  const failures = specs.filter((s) => s.state === "failed");
  return {
    passed: specs.filter((s) => s.state === "passed").length,
    failed: failures.length,
    skipped: specs.filter((s) => s.state === "skipped" && s.name.includes("[Conformance]")).length,
    failures,
  };
}

// --- the run -------------------------------------------------------------------------------

export interface SuiteRun {
  ginkgo: string;
  /** e2e.test, or another test binary with the same flags (the slim one). */
  e2e: string;
  kubeconfig: string;
  kubectl: string;
  /** Where the JUnit file (junit_01.xml) and e2e.log go. */
  out: string;
  procs: number;
  /** Narrows the [Conformance] specs (ginkgo --focus); DEFAULT_SKIP always applies, `skip` adds to it. */
  focus?: string;
  skip?: string;
  timeout: string;
  /** Also copy ginkgo's output to stderr as it comes. */
  echo?: boolean;
}

/** Runs the [Conformance] specs (ginkgo's label filter) with ginkgo in parallel processes. */
export async function runSuite(s: SuiteRun): Promise<{ exitCode: number; log: string }> {
  mkdirSync(s.out, { recursive: true });
  const skip = [DEFAULT_SKIP, s.skip].filter(Boolean).join("|");
  const args = [
    `--procs=${s.procs}`,
    "--label-filter=Conformance",
    `--skip=${skip}`,
    ...(s.focus ? [`--focus=${s.focus}`] : []),
    `--timeout=${s.timeout}`,
    "--no-color",
    s.e2e,
    "--",
    `--kubeconfig=${s.kubeconfig}`,
    "--provider=skeleton",
    `--kubectl-path=${s.kubectl}`,
    `--report-dir=${s.out}`,
    "--dump-logs-on-failure=false",
  ];
  if (s.echo) log(`ginkgo ${args.join(" ")}`);
  const logFile = join(s.out, "e2e.log");
  const out = createWriteStream(logFile, { mode: 0o644 });
  // The suite's kubectl specs leave temporary files (test-kuberc*, kubectl-proxy-unix*) in TMPDIR:
  // keep them in the run's own directory instead of /tmp.
  const tmp = join(s.out, "tmp");
  mkdirSync(tmp, { recursive: true });
  const g = execa(s.ginkgo, args, { reject: false, all: true, buffer: false, stdin: "ignore", cwd: s.out, env: { TMPDIR: tmp } });
  g.all!.on("data", (d: Buffer) => {
    out.write(d);
    if (s.echo) process.stderr.write(d);
  });
  const r = await g;
  await new Promise<void>((res) => out.end(res));
  return { exitCode: r.exitCode ?? -1, log: logFile };
}

/** Where scripts/build-conformance.sh puts the suite for a Kubernetes version. */
export function conformanceDir(version = DEFAULT_KUBERNETES_VERSION): string {
  return join(cacheDir(), "conformance", version);
}

async function run(o: Options): Promise<number> {
  const version = DEFAULT_KUBERNETES_VERSION;
  const suite = conformanceDir(version);
  const e2e = o.e2eBinary ?? join(suite, "e2e.test");
  const ginkgo = join(suite, "ginkgo");
  for (const f of [e2e, ginkgo, join(suite, "images.txt")]) {
    if (!existsSync(f)) throw new Error(`${f} is missing: build the suite with scripts/build-conformance.sh (npm run conformance does)`);
  }
  const images = readFileSync(join(suite, "images.txt"), "utf8").split("\n").filter(Boolean);
  mkdirSync(o.out, { recursive: true, mode: 0o700 });

  const iface = await defaultRouteInterface();
  let added: EgressRule[] = [];
  let base: EgressRule[] = [];
  const fresh = !o.cluster;
  const name = o.cluster ?? o.name ?? `conformance-${randomBytes(3).toString("hex")}`;
  const t0 = Date.now();
  let registry = false;
  const tempTags = new Set<string>();
  let stopping = false;
  /** Between steps: after a signal, the run makes nothing more. */
  const going = () => {
    if (stopping) throw new Error("interrupted");
  };
  const cleanUp = async () => {
    stopping = true;
    // Before the cluster: its network cannot go while the registry is attached to it.
    if (registry) {
      await removeRegistry(name);
      log(`removed the local registry ${registryContainerName(name)}`);
    }
    for (const t of tempTags) await execa("docker", ["rmi", t], { reject: false });
    if (fresh && !o.keep) {
      log(`deleting cluster ${name}`);
      await kubeprov(["delete", "--name", name], 5 * 60_000).catch((e) => log(`delete ${name}: ${(e as Error).message}`));
    }
    if (iface && added.length) {
      await unblockEgress(iface, added);
      log(`DOCKER-USER: removed the ${added.length} rule(s) this run added`);
    }
  };
  // Once, whoever asks first (a signal, or the run ending): the run's own steps fail while the
  // registry goes, and the process must not exit before the clean-up is done.
  let released: Promise<void> | undefined;
  const release = () => (released ??= cleanUp());
  const onSignal = (sig: NodeJS.Signals) => {
    log(`${sig}: cleaning up`);
    void release().finally(() => process.exit(1));
  };
  // on, not once: execa's child clean-up (signal-exit) re-raises a signal that no other listener
  // is left to take, and `once` removes ours before it runs, so the process died mid-clean-up.
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    if (!iface) log("no default route: nothing can leave this machine, no egress block needed");
    else {
      base = egressRules(["10.213.0.0/16"], ["10.244.0.0/16"]);
      added = await blockEgress(iface, base);
      log(`DOCKER-USER: ${added.length} rule(s) added for the node and pod networks out of ${iface}`);
    }
    const plan = registryPlan(images);
    if (fresh) {
      const shape = ["--nodes", String(o.nodes), "--control-planes", String(o.controlPlanes)];
      // The machines first (and with them the cluster's network), then the registry on that
      // network, filled, then Kubernetes with the registry as the mirror: up's preflight checks
      // that every node reaches it.
      log(`making the machines of cluster ${name}: ${o.nodes} node(s), ${o.controlPlanes} control plane(s)`);
      await kubeprov(["up", "--name", name, ...shape, "--no-kubernetes", "--no-kubeconfig"]);
      going();
      const t = Date.now();
      registry = true;
      const local = await startRegistry(name);
      await pushImages(local, plan.pushes, tempTags);
      going();
      const host = `${registryContainerName(name)}:${REGISTRY_PORT}`;
      log(`local registry ${host} (${REGISTRY_IMAGE}): ${plan.pushes.length} images pushed in ${((Date.now() - t) / 1000).toFixed(1)} s; the mirror of ${plan.registries.join(", ")}`);
      log(`making cluster ${name}`);
      await kubeprov(["up", "--name", name, ...shape, ...mirrorFlags(plan.registries, host), "--no-kubeconfig"]);
    } else {
      log(`--cluster ${name}: no local registry is made for an existing cluster, so specs whose pods force a pull (imagePullPolicy: Always, e.g. "ImageVolume ... pull policy of Always", "Projected PodCertificate ... mTLS") fail unless its nodes have a mirror serving ${plan.registries.join(", ")} with the test images`);
    }
    if (iface) {
      const nets = await clusterNetworks(name);
      const more = await blockEgress(iface, egressRules(nets.nodes, nets.pods, base));
      added.push(...more);
      if (more.length) log(`DOCKER-USER: ${more.length} more rule(s) for ${name}'s own networks`);
    }
    const kubeconfig = join(o.out, "kubeconfig");
    writeFileSync(kubeconfig, await kubeprov(["kubeconfig", "--name", name]), { mode: 0o600 });

    log(`loading ${images.length} test images into every node of ${name}`);
    for (const img of images) {
      going();
      await kubeprov(["image", "load", "--name", name, img]);
    }
    // The sample API server's pod (Aggregator spec) runs etcd from the cluster's own etcd image:
    // control planes have it, workers do not, and nothing may be pulled.
    going();
    await kubeprov(["image", "load", "--name", name, join(bundleDir(version), "images", "etcd.tar")]);
    going();

    const started = Date.now();
    const r = await runSuite({
      ginkgo,
      e2e,
      kubeconfig,
      kubectl: join(bundleDir(version), "bin", "kubectl"),
      out: o.out,
      procs: o.procs,
      focus: o.focus,
      skip: o.skip,
      timeout: o.timeout,
      echo: true,
    });
    log(`ginkgo exited ${r.exitCode} after ${((Date.now() - started) / 60_000).toFixed(1)} min (${((Date.now() - t0) / 60_000).toFixed(1)} min with the cluster and images); log: ${r.log}`);
    return report(o.out);
  } finally {
    await release();
  }
}

/** Prints the counts, the failed specs and the JUnit file(s) in `dir`; 1 when a spec failed. */
export function report(dir: string): number {
  const junit = readdirSync(dir).filter((f) => /^junit.*\.xml$/.test(f)).map((f) => join(dir, f));
  if (junit.length === 0) throw new Error(`the suite wrote no JUnit file into ${dir} (see e2e.log there)`);
  const specs = junit.flatMap((f) => parseJunit(readFileSync(f, "utf8")));
  const s = summarize(specs);
  process.stdout.write(`${s.passed} passed, ${s.failed} failed, ${s.skipped} skipped\n`);
  for (const f of s.failures) process.stdout.write(`FAILED: ${f.name}\n         ${f.message ?? ""}\n`);
  process.stdout.write(`JUnit: ${junit.join(", ")}\n`);
  return s.failed > 0 ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]).endsWith(join("scripts", "conformance.js"))) {
  let opts: Options;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof Usage) {
      process.stderr.write(`conformance: ${e.message}\nusage: npm run conformance -- [--cluster NAME] [--focus RE] [--skip RE] [--procs N] [--nodes N --control-planes M --name NAME --keep] [--out DIR] [--e2e-binary FILE] [--timeout 3h]\n`);
      process.exit(2);
    }
    throw e;
  }
  run(opts).then(
    (code) => process.exit(code),
    (e) => {
      process.stderr.write(`conformance: ${(e as Error).message}\n`);
      process.exit(1);
    },
  );
}
