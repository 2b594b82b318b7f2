// kubeprov up: machines from a driver (docker by default; none: this machine itself), then
// Kubernetes on them (unless --no-kubernetes). Idempotent: a second run creates nothing and
// reports 0 changes.
import { InvalidArgumentError, Option, type Command } from "commander";
import { existsSync, readFileSync } from "node:fs";
import { DEFAULT_KUBERNETES_VERSION, DNS1123_LABEL } from "../../constants.js";
import { RuntimeFailure, UsageError } from "../../errors.js";
import type { KubeprovEvent, Reporter } from "../../events.js";
import { bundleDir } from "../../paths.js";
import { parseClusterText } from "../../spec/load.js";
import { recordedAddons } from "./addons.js";
import type { Cluster, ClusterInput } from "../../spec/schema.js";
import type { Host } from "../../engine/task.js";
import { parseDocument } from "yaml";
import { IMAGE_MIRROR_COUNTRIES, parseMirrorFlags, repositoryProblem } from "../../images/registries.js";
import type { ClusterMachinesPlan, Driver, ProvisionResult } from "../../drivers/driver.js";
import { renderDriverClusterFile } from "../../drivers/clusterfile.js";
import { clusterFiles, writeFileAtomic } from "../../drivers/localfiles.js";
import { installKubeconfig } from "../../drivers/localkubeconfig.js";
import { getDriver } from "../../drivers/index.js";
import { resolveClusterDriver, writeDriverRecord, type DriverRecord } from "../../drivers/record.js";
import { noneDriverWarning, thisNodeName } from "../../drivers/none.js";
import { MAX_NODES, parseMemory, planNodes } from "../../drivers/docker/plan.js";
import { createReporter } from "../../output/index.js";
import { outputOption, parsePositiveInt, timingsOption, type OutputFormat } from "../options.js";
import { runPipeline } from "../../engine/pipeline.js";
import { factsTask } from "../../tasks/facts.js";
import { NODE_BUNDLE_DIR } from "../../tasks/images.js";
import { clusterTasks } from "../../plan/cluster.js";
import { controlPlaneQuorumWarning, etcdHostQuorumWarning } from "../../plan/topology.js";
import { validateIgnorePreflightErrors, collectIds } from "../../tasks/preflight.js";
import { removeDriverNode } from "../../lifecycle/driver-nodes.js";
import { DEFAULT_DRAIN_TIMEOUT_S } from "../../lifecycle/remove-node.js";

export interface UpOptions {
  name: string;
  nodes: number;
  controlPlanes: number;
  /** Machines with role etcd: the external etcd cluster (0: etcd stacked on the control planes). */
  etcdNodes?: number;
  kubernetesVersion: string;
  kubernetes: boolean;
  cpus?: number;
  memory?: string;
  /** Default: the driver recorded for the cluster, else docker. */
  driver?: string;
  /** For the virtualbox driver: the OVA imported as the base image (default: the recorded one). */
  vboxImage?: string;
  /** For the none driver: the node's address (default: the default route's interface's; the recorded one). */
  address?: string;
  kubeconfig: boolean;
  output: OutputFormat;
  ignorePreflightErrors?: string[];
  cni: "flannel" | "bridge" | "none";
  flannelBackend?: "host-gw" | "vxlan";
  /** spec.images.repository (kubeadm's --image-repository). */
  imageRepository?: string;
  /** spec.registryMirrors: `URL` (docker.io) or `REGISTRY=URL`, repeatable. */
  registryMirror?: string[];
  /** A known mirror set by country code (cn), as minikube's --image-mirror-country. */
  imageMirrorCountry?: string;
}

/** Where the cluster's images come from: spec.images and spec.registryMirrors of the file up writes. */
export interface ImageSources {
  images?: ClusterInput["spec"]["images"];
  registryMirrors?: Record<string, string[]>;
}

/**
 * Pure: the image flags into the cluster file's fields. A flag that is not given keeps what the
 * cluster file recorded (`previous`), so a plain re-run of `up` changes nothing; a bad value is a
 * usage error (exit 2) naming the flag, before anything is touched.
 */
export function planImageSources(o: Pick<UpOptions, "imageRepository" | "registryMirror" | "imageMirrorCountry">, previous?: ImageSources): ImageSources {
  const problems: string[] = [];
  let repository = o.imageRepository;
  if (o.imageMirrorCountry !== undefined) {
    const set = IMAGE_MIRROR_COUNTRIES[o.imageMirrorCountry.toLowerCase()];
    if (!set) problems.push(`--image-mirror-country ${JSON.stringify(o.imageMirrorCountry)}: no mirror set known for it (known: ${Object.keys(IMAGE_MIRROR_COUNTRIES).join(", ")})`);
    // An explicit --image-repository wins, as in minikube.
    else repository ??= set.repository;
  }
  if (o.imageRepository !== undefined) {
    const why = repositoryProblem(o.imageRepository);
    if (why) problems.push(`--image-repository: ${why}`);
  }
  const flags = parseMirrorFlags(o.registryMirror ?? []);
  problems.push(...flags.problems);
  if (problems.length) throw new UsageError(problems.join("\n"));
  const out: ImageSources = {};
  const images = repository !== undefined ? { repository } : previous?.images;
  if (images) out.images = images;
  const mirrors = o.registryMirror?.length ? flags.mirrors : previous?.registryMirrors;
  if (mirrors) out.registryMirrors = mirrors;
  return out;
}

/** spec.images and spec.registryMirrors as a cluster file written by up records them. */
export function recordedImageSources(clusterFileText: string): ImageSources {
  try {
    const doc = parseDocument(clusterFileText);
    const js = (path: string[]) => (doc.getIn(path) as { toJSON?: () => unknown } | undefined)?.toJSON?.();
    const images = js(["spec", "images"]) as ImageSources["images"];
    const registryMirrors = js(["spec", "registryMirrors"]) as ImageSources["registryMirrors"];
    return { ...(images ? { images } : {}), ...(registryMirrors ? { registryMirrors } : {}) };
  } catch {
    return {};
  }
}

function collectRepeated(value: string, previous: string[] = []): string[] {
  return [...previous, value];
}

export interface UpPlan {
  machines: ClusterMachinesPlan;
  warnings: string[];
}


/** Pure: checks the command line and plans the machines. Throws UsageError (exit 2) before anything is touched. */
export function planUp(
  o: Pick<UpOptions, "name" | "nodes" | "controlPlanes" | "etcdNodes" | "kubernetesVersion" | "kubernetes" | "cpus" | "memory" | "vboxImage"> & { driver: string } & Partial<Pick<UpOptions, "cni" | "flannelBackend" | "address">>,
  /** The none driver's node name (this machine's hostname); asked for only with that driver. */
  thisNode: () => string = thisNodeName,
): UpPlan {
  const warnings: string[] = [];
  if (!DNS1123_LABEL.test(o.name))
    throw new UsageError(`--name ${JSON.stringify(o.name)}: a cluster name must be a DNS-1123 label (lowercase letters, digits and '-', starting and ending with a letter or digit, at most 63)`);
  if (o.driver === "none") checkThisMachineFlags(o);
  if (!Number.isInteger(o.nodes) || o.nodes < 1) throw new UsageError(`--nodes ${o.nodes}: must be at least 1`);
  if (!Number.isInteger(o.controlPlanes) || o.controlPlanes < 1) throw new UsageError(`--control-planes ${o.controlPlanes}: must be at least 1`);
  if (o.controlPlanes > o.nodes)
    throw new UsageError(`--control-planes ${o.controlPlanes} is more than --nodes ${o.nodes}: the control planes are among the nodes`);
  const etcdNodes = o.etcdNodes ?? 0;
  if (!Number.isInteger(etcdNodes) || etcdNodes < 0) throw new UsageError(`--etcd-nodes ${etcdNodes}: must be 0 (etcd on the control planes) or more`);
  if (o.nodes + etcdNodes > MAX_NODES) throw new UsageError(`--nodes ${o.nodes}${etcdNodes ? ` and --etcd-nodes ${etcdNodes}` : ""}: at most ${MAX_NODES} machines per cluster`);
  if (o.flannelBackend && o.cni && o.cni !== "flannel") throw new UsageError(`--flannel-backend ${o.flannelBackend} is flannel's setting, and --cni is ${o.cni}`);
  // etcd's quorum is about its members: the etcd hosts with --etcd-nodes, else the control planes.
  const quorum = etcdNodes ? etcdHostQuorumWarning(etcdNodes) : controlPlaneQuorumWarning(o.controlPlanes);
  if (quorum) warnings.push(`${etcdNodes ? `--etcd-nodes ${etcdNodes}` : `--control-planes ${o.controlPlanes}`}: ${quorum}`);
  if (!/^v\d+\.\d+\.\d+$/.test(o.kubernetesVersion)) throw new UsageError(`--kubernetes-version ${JSON.stringify(o.kubernetesVersion)}: must look like ${DEFAULT_KUBERNETES_VERSION}`);
  if (o.driver !== "docker" && o.driver !== "virtualbox" && o.driver !== "none")
    throw new UsageError(`--driver ${JSON.stringify(o.driver)}: \`up\` creates machines with docker or virtualbox, or uses this machine with none (for your own hosts use \`kubeprov apply -f cluster.yaml\`)`);
  if (o.vboxImage !== undefined && o.driver !== "virtualbox") throw new UsageError(`--vbox-image is for the virtualbox driver (this cluster's driver is ${o.driver})`);
  if (o.address !== undefined && o.driver !== "none") throw new UsageError(`--address is for the none driver (this cluster's driver is ${o.driver}, which gives its machines their addresses)`);
  if (o.driver === "none") return { machines: { cluster: o.name, machines: [{ node: thisNode(), roles: ["control-plane", "worker"] }], reserveVirtualIP: false }, warnings: [] };
  let memory: number | undefined;
  if (o.memory !== undefined) {
    memory = parseMemory(o.memory);
    if (memory === undefined || memory < 64 * 1024 * 1024) throw new UsageError(`--memory ${JSON.stringify(o.memory)}: a size such as 2g or 512m (at least 64m)`);
  }
  if (o.cpus !== undefined && !(o.cpus > 0)) throw new UsageError(`--cpus ${o.cpus}: must be more than 0`);
  const machines = planNodes(o.name, o.nodes, o.controlPlanes, etcdNodes).map((m) => ({ ...m, cpus: o.cpus, memory }));
  for (const m of machines)
    if (!DNS1123_LABEL.test(m.node)) throw new UsageError(`--name ${JSON.stringify(o.name)} is too long: node name ${m.node} would be over 63 characters`);
  return { machines: { cluster: o.name, machines, reserveVirtualIP: o.controlPlanes > 1 }, warnings };
}

/**
 * The none driver has one node, this machine, control plane and worker: flags that ask for more
 * machines, or for machine sizes the driver cannot set, are usage errors naming the flag.
 */
function checkThisMachineFlags(o: Parameters<typeof planUp>[0]): void {
  const one = "the none driver runs one node, this machine";
  if (o.nodes !== 1) throw new UsageError(`--nodes ${o.nodes}: ${one}`);
  if (o.controlPlanes !== 1) throw new UsageError(`--control-planes ${o.controlPlanes}: ${one}`);
  if ((o.etcdNodes ?? 0) !== 0) throw new UsageError(`--etcd-nodes ${o.etcdNodes}: ${one}`);
  if (o.cpus !== undefined) throw new UsageError(`--cpus: the none driver uses this machine as it is (no CPU limit to set)`);
  if (o.memory !== undefined) throw new UsageError(`--memory: the none driver uses this machine as it is (no memory limit to set)`);
  if (o.address !== undefined && !/^\d{1,3}(\.\d{1,3}){3}$/.test(o.address)) throw new UsageError(`--address ${JSON.stringify(o.address)}: an IPv4 address of this machine`);
}

function parseNonNegativeInt(v: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`must be a whole number, 0 or more (got "${v}")`);
  return n;
}

/**
 * An existing cluster keeps its etcd topology: a stacked cluster is not switched to external etcd
 * (nor back), and external etcd hosts are not taken out; more of them join as learners. Refused
 * before any machine changes.
 */
export function checkEtcdTopology(o: Pick<UpOptions, "name" | "etcdNodes">, existing: Array<{ node: string; roles: readonly string[] }>): void {
  if (!existing.length) return;
  const had = existing.filter((m) => m.roles.includes("etcd")).length;
  const want = o.etcdNodes ?? 0;
  if (want >= had && (had > 0 || want === 0)) return;
  if (had === 0)
    throw new UsageError(`--etcd-nodes ${want}: cluster ${o.name} exists with etcd on its control planes (stacked); switching it to external etcd is not supported (delete it and run up again)`);
  throw new UsageError(`--etcd-nodes ${want}: cluster ${o.name} has ${had} external etcd host(s); removing etcd hosts is not supported (pass --etcd-nodes ${had} or more)`);
}

function parseCpus(v: string): number {
  const n = Number(v);
  if (!/^\d+(\.\d+)?$/.test(v) || !(n > 0)) throw new InvalidArgumentError(`must be a positive number (got "${v}")`);
  return n;
}

export function register(program: Command): void {
  const cmd = program
    .command("up")
    .description("create (or converge) a local cluster on machines the driver makes (docker: systemd containers)")
    .requiredOption("--name <name>", "cluster name (a DNS-1123 label); names the machines, the network and the kubeconfig context")
    .option("--nodes <n>", "number of machines", parsePositiveInt, 1)
    .option("--control-planes <m>", "how many of them are control planes (the first M)", parsePositiveInt, 1)
    .option("--etcd-nodes <n>", "this many more machines run an external etcd cluster (role etcd) instead of etcd on the control planes", parseNonNegativeInt, 0)
    .option("--kubernetes-version <v>", "Kubernetes version", DEFAULT_KUBERNETES_VERSION)
    .option("--no-kubernetes", "stop once the machines are up and reachable over SSH")
    .option("--cpus <c>", "CPU limit per machine", parseCpus)
    .option("--memory <size>", "memory limit per machine (e.g. 2g)")
    .option("--driver <driver>", "machine driver: docker, virtualbox, or none (this machine itself; default: the one recorded for the cluster, else docker)")
    .option("--address <ip>", "none driver: the node's address (default: the address of the default route's interface; recorded for the cluster)")
    .option("--vbox-image <file>", "virtualbox driver: the OVA of a cloud image with cloud-init to import (recorded for the cluster)")
    .addOption(new Option("--cni <cni>", "network add-on: flannel (pods reach each other across nodes), bridge (one node), none (bring your own)").choices(["flannel", "bridge", "none"]).default("flannel"))
    .addOption(new Option("--flannel-backend <backend>", "flannel's backend: host-gw (the nodes share one L2 network, as docker's do) or vxlan (encapsulated)").choices(["host-gw", "vxlan"]))
    .option("--image-repository <repo>", "name every image the cluster runs under this repository (registry[:port]/path), as kubeadm's --image-repository; the bundle's images are tagged to match on the nodes")
    .option("--registry-mirror <url>", "a mirror for docker.io (URL) or another registry (REGISTRY=URL), as containerd hosts.toml on every node; repeatable", collectRepeated)
    .option("--image-mirror-country <code>", "a known mirror set: cn (the image repository minikube uses in mainland China)")
    .option("--no-kubeconfig", "do not merge the admin kubeconfig into ~/.kube/config")
    .option("--ignore-preflight-errors <ids>", "preflight check IDs whose failures become warnings (comma separated), or all", collectIds);
  outputOption(cmd);
  timingsOption(cmd);
  cmd.action(async (o: UpOptions) => {
    await up(o);
  });
}

export async function up(o: UpOptions): Promise<{ result: ProvisionResult; cluster: Cluster; clusterFile: string }> {
  const started = Date.now();
  const ignorePreflightErrors = validateIgnorePreflightErrors(o.ignorePreflightErrors);
  // The driver the cluster was made with (an explicit --driver must agree), recorded below.
  const resolved = DNS1123_LABEL.test(o.name) ? resolveClusterDriver(o.name, o.driver) : undefined;
  const driverName = resolved?.name ?? o.driver ?? "docker";
  const vboxImage = o.vboxImage ?? resolved?.record?.vboxImage;
  const address = o.address ?? resolved?.record?.address;
  const plan = planUp({ ...o, driver: driverName, address });
  const recorded = existsSync(clusterFiles(o.name).clusterFile) ? recordedImageSources(readFileSync(clusterFiles(o.name).clusterFile, "utf8")) : undefined;
  const imageSources = planImageSources(o, recorded);
  const reporter: Reporter = createReporter(o.output, { interactive: false });
  const log = (message: string, level: "info" | "warn" = "info") => reporter.emit({ type: "log", level, message });
  try {
    for (const w of plan.warnings) log(w, "warn");
    if (driverName === "none") log(noneDriverWarning(plan.machines.machines[0].node), "warn");
    const driver: Driver = getDriver(driverName, { log: (m) => log(m), vboxImage, address });
    await driver.preflight();
    // Recorded before any machine exists, so `delete` knows the driver even if this run fails.
    writeDriverRecord(o.name, { driver: driverName as DriverRecord["driver"], vboxImage, address });
    // The artifact bundle is shared read-only into new nodes: prepare then imports and copies from
    // it (checking sizes and sha256) instead of uploading ~600 MB over SSH.
    const bundle = bundleDir(o.kubernetesVersion);
    const sharedDirectories = o.kubernetes && existsSync(bundle) && driverName !== "none" ? [{ hostPath: bundle, machinePath: NODE_BUNDLE_DIR, readOnly: true }] : [];
    // Fewer nodes than the cluster has: the extra ones leave the cluster (drained, etcd member
    // removed) and their machines are deleted, workers first and the newest first.
    const wanted = new Set(plan.machines.machines.map((m) => m.node));
    const existing = await driver.list(o.name);
    checkEtcdTopology(o, existing);
    const extra = existing.filter((m) => !wanted.has(m.node)).reverse().sort((a, b) => Number(a.roles.includes("control-plane")) - Number(b.roles.includes("control-plane")));
    for (const m of extra) {
      log(`${m.node}: not in the plan any more (--nodes ${o.nodes}, --control-planes ${o.controlPlanes}): removing it`);
      await removeDriverNode(o.name, m.node, driver, { force: false, drainTimeoutS: DEFAULT_DRAIN_TIMEOUT_S, kubernetes: o.kubernetes, log: (msg) => log(msg) });
    }
    const result = await driver.provision({ ...plan.machines, sharedDirectories });
    const files = clusterFiles(o.name);
    const previous = existsSync(files.clusterFile) ? readFileSync(files.clusterFile, "utf8") : undefined;
    const text = renderDriverClusterFile({
      name: o.name,
      driver: driver.name,
      kubernetesVersion: o.kubernetesVersion,
      machines: result.machines,
      identityFile: files.identityFile,
      knownHostsFile: files.knownHostsFile,
      artifactsDir: bundleDir(o.kubernetesVersion),
      virtualIP: result.virtualIP,
      subnet: result.subnet,
      interface: result.interface,
      ...(result.cgroupDriver ? { cgroupDriver: result.cgroupDriver } : {}),
      cni: o.cni,
      ...(o.flannelBackend ? { flannelBackend: o.flannelBackend } : {}),
      // The add-ons `kubeprov addons enable|disable` recorded stay as they are.
      addons: previous === undefined ? undefined : recordedAddons(previous),
      ...imageSources,
    });
    // Validated as any cluster file is, before it is written.
    const cluster = parseClusterText(text, files.clusterFile);
    if (previous !== text) writeFileAtomic(files.clusterFile, text, 0o600);
    const changed = result.created + result.started;
    log(
      `cluster ${o.name}: ${result.machines.length} machine(s) on ${driver.name}${result.subnet ? ` network ${result.subnet}` : ""}` +
        `${result.virtualIP ? `, virtual IP ${result.virtualIP}` : ""}; ${result.created} created, ${result.started} started`,
    );
    for (const m of result.machines) log(`  ${m.node}  ${m.address}  ${m.roles.join(",")}`);
    log(`cluster file: ${files.clusterFile}`);
    if (result.machines.some((m) => m.reach.kind === "ssh")) log(`ssh: kubeprov ssh --name ${o.name} ${result.machines[0]?.node ?? "NODE"}`);
    if (!o.kubernetes) {
      reporter.emit(summaryEvent(changed, result.machines.length - changed, Date.now() - started));
      return { result, cluster, clusterFile: files.clusterFile };
    }
    await reporter.close();
    await installKubernetes(o, cluster, files.clusterFile, ignorePreflightErrors);
    return { result, cluster, clusterFile: files.clusterFile };
  } finally {
    await reporter.close();
  }
}

function summaryEvent(changed: number, unchanged: number, durationMs: number): KubeprovEvent {
  return { type: "summary", changed, unchanged, failed: 0, skipped: 0, durationMs };
}

/** The cluster plan through the pipeline, then the admin kubeconfig merged as context NAME. */
async function installKubernetes(o: UpOptions, cluster: Cluster, source: string, ignorePreflightErrors: string[]): Promise<void> {
  const options = { ignorePreflightErrors };
  let admin: string | undefined;
  // One plan for the whole cluster: one lock, one facts phase, one event stream, one summary; the
  // admin kubeconfig is read on the run's own connection to the first control plane.
  await runPipeline({
    cluster, source, tasks: clusterTasks("all"), facts: factsTask, output: o.output, acceptNewHostKeys: false, options,
    afterRun: async (hosts) => {
      admin = await readAdminKubeconfig(hosts.find((h) => h.roles.includes("control-plane")));
    },
  });
  const files = clusterFiles(o.name);
  if (admin === undefined) throw new RuntimeFailure("the run ended without reading the admin kubeconfig");
  writeFileAtomic(files.kubeconfig, admin, 0o600);
  if (o.kubeconfig) {
    const path = installKubeconfig(admin, o.name);
    process.stderr.write(`kubeconfig: context ${o.name} in ${path} (also ${files.kubeconfig})\n`);
  } else {
    process.stderr.write(`kubeconfig: ${files.kubeconfig}\n`);
  }
}

/** /etc/kubernetes/admin.conf of a control plane, on a connection already open. */
async function readAdminKubeconfig(host: Host | undefined): Promise<string> {
  if (!host) throw new RuntimeFailure("the cluster has no control plane");
  const data = await host.transport.readFile("/etc/kubernetes/admin.conf");
  if (!data) throw new RuntimeFailure(`${host.name}: /etc/kubernetes/admin.conf is missing after init`);
  return data.toString("utf8");
}

