// kubeprov join -f FILE|--name NAME: every host of the cluster file but the first control plane
// joins the cluster init made there: other control planes one at a time (stacked etcd learner,
// promoted once in sync), workers by TLS bootstrap with a bootstrap token (kubeadm join).
// Idempotent: joined hosts report nothing to do. `join phase <name>` runs one phase.
// `kubeprov join ENDPOINT --token T --discovery-token-ca-cert-hash sha256:H [--control-plane]`
// runs on the joining machine itself, as kubeadm join does: token discovery finds the cluster
// (bootstrap/discovery.ts), and the same join plan runs on this one machine (connection local),
// with what it would have read from the first control plane taken from the API instead.
import type { Command } from "commander";
import { loadTarget } from "../target.js";
import { certificateKeyOption, runOptions, type CommonOptions } from "../options.js";
import { CERTIFICATE_KEY_ENV } from "../../bootstrap/copycerts.js";
import { validateTokenOptions } from "../../tasks/bootstrap.js";
import { collectIds, validateIgnorePreflightErrors } from "../../tasks/preflight.js";
import { joinPhases } from "../../plan/init.js";
import { hostname } from "node:os";
import { UsageError } from "../../errors.js";
import { DNS1123_LABEL } from "../../constants.js";
import { canonicalIP } from "../../pki/names.js";
import { clusterWithJoiningHost, discoverCluster, parseCaHashes, parseEndpoint } from "../../bootstrap/discovery.js";
import { formatToken, requireToken } from "../../bootstrap/token.js";
import { parseClusterText } from "../../spec/load.js";
import { thisMachineAddress } from "../../drivers/none.js";

type JoinOptions = CommonOptions & {
  token?: string;
  ignorePreflightErrors?: string[];
  certificateKey?: string;
  discoveryTokenCaCertHash?: string[];
  controlPlane?: boolean;
  nodeName?: string;
  apiserverAdvertiseAddress?: string;
};

/** Options that only mean something to a join on the joining machine (with ENDPOINT). */
const HERE_ONLY: Array<[keyof JoinOptions, string]> = [
  ["discoveryTokenCaCertHash", "--discovery-token-ca-cert-hash"],
  ["controlPlane", "--control-plane"],
  ["nodeName", "--node-name"],
  ["apiserverAdvertiseAddress", "--apiserver-advertise-address"],
];

async function runJoin(o: JoinOptions, onlyPhases?: string[], endpoint?: string): Promise<void> {
  if (endpoint !== undefined) return runJoinHere(endpoint, o, onlyPhases);
  const stray = HERE_ONLY.find(([k]) => o[k] !== undefined && o[k] !== false);
  if (stray) throw new UsageError(`${stray[1]} is for \`kubeprov join ENDPOINT\` run on the joining machine; with -f/--name the cluster file says which hosts join and how`);
  validateTokenOptions({ token: o.token });
  const ignorePreflightErrors = validateIgnorePreflightErrors(o.ignorePreflightErrors);
  const certificateKey = certificateKeyOption(o.certificateKey);
  const { cluster, source } = await loadTarget(o);
  const { joinTasks } = await import("../../plan/join.js");
  const { runPipeline } = await import("../../engine/pipeline.js");
  const { factsTask } = await import("../../tasks/facts.js");
  await runPipeline({
    cluster,
    source,
    tasks: joinTasks(),
    facts: factsTask,
    dryRun: o.dryRun,
    output: o.output,
    concurrency: o.concurrency,
    onlyPhases,
    options: { ...(o.token ? { token: o.token } : {}), ...(certificateKey ? { certificateKey } : {}), ignorePreflightErrors, verbose: o.verbose ?? 0 },
  });
}

/** This machine's node name and address: --node-name / --apiserver-advertise-address, else its hostname and the default route's address. */
function thisMachine(o: JoinOptions): { name: string; address: string } {
  const name = (o.nodeName ?? hostname()).toLowerCase();
  if (!DNS1123_LABEL.test(name))
    throw new UsageError(
      o.nodeName !== undefined
        ? `--node-name ${JSON.stringify(o.nodeName)}: a node name is a DNS-1123 label (lowercase letters, digits and '-')`
        : `this machine's hostname ${JSON.stringify(hostname())} is not a DNS-1123 label, and the node is named after it: pass --node-name NAME`,
    );
  if (o.apiserverAdvertiseAddress !== undefined) {
    const ip = canonicalIP(o.apiserverAdvertiseAddress);
    if (!ip) throw new UsageError(`--apiserver-advertise-address ${JSON.stringify(o.apiserverAdvertiseAddress)}: not an IP address`);
    return { name, address: ip };
  }
  return { name, address: thisMachineAddress("--apiserver-advertise-address") };
}

/** `kubeprov join ENDPOINT …` on the joining machine: discovery, then the join plan on this machine alone. */
async function runJoinHere(endpoint: string, o: JoinOptions, onlyPhases?: string[]): Promise<void> {
  if (o.file || o.name) throw new UsageError("join ENDPOINT runs on the joining machine and finds the cluster through its API: give no -f/--name");
  if (!o.token) throw new UsageError("join ENDPOINT needs --token (the bootstrap token of the join line `kubeprov init` printed)");
  validateTokenOptions({ token: o.token });
  parseEndpoint(endpoint);
  const caHashes = parseCaHashes(o.discoveryTokenCaCertHash ?? []);
  const ignorePreflightErrors = validateIgnorePreflightErrors(o.ignorePreflightErrors);
  const certificateKey = certificateKeyOption(o.certificateKey);
  if (o.controlPlane && !certificateKey)
    throw new UsageError(`--control-plane: a control plane joining from its own machine takes the shared CAs from Secret kube-system/kubeadm-certs: give the certificate key \`kubeprov init --upload-certs\` printed (${CERTIFICATE_KEY_ENV}, or --certificate-key)`);
  if (!o.controlPlane && o.certificateKey !== undefined) throw new UsageError("--certificate-key is for a control plane: add --control-plane, or leave the key out for a worker");
  const self = thisMachine(o);
  const token = formatToken(requireToken(o.token));
  const found = await discoverCluster({ endpoint, token, caHashes });
  const source = `kube-system/kubeprov-config (${found.server})`;
  const cluster = clusterWithJoiningHost(parseClusterText(found.clusterText, source), { ...self, controlPlane: Boolean(o.controlPlane) });
  const { joinTasks } = await import("../../plan/join.js");
  const { runPipeline } = await import("../../engine/pipeline.js");
  const { connectHosts, closeHosts } = await import("../../engine/hosts.js");
  const { factsTask } = await import("../../tasks/facts.js");
  const here = cluster.spec.hosts.filter((h) => h.name === self.name);
  const hosts = await connectHosts({ ...cluster, spec: { ...cluster.spec, hosts: here } });
  try {
    await runPipeline({
      cluster,
      source,
      tasks: joinTasks(),
      facts: factsTask,
      hosts,
      joinTo: { server: found.server, ca: found.ca, token },
      dryRun: o.dryRun,
      output: o.output,
      onlyPhases,
      options: { ...(certificateKey ? { certificateKey } : {}), ignorePreflightErrors, verbose: o.verbose ?? 0 },
    });
  } finally {
    await closeHosts(hosts);
  }
  if (!o.dryRun && o.output !== "json" && !onlyPhases) {
    process.stdout.write(
      `\nThis machine joined the cluster at ${found.server} as ${o.controlPlane ? "a control plane" : "a worker"}, node ${self.name}.\n` +
        "Run `kubectl get nodes` against the cluster to see it. To manage it with `kubeprov apply` from your\n" +
        `workstation, list it in your cluster file (name ${self.name}, address ${self.address}).\n`,
    );
  }
}

function joinLikeOptions(cmd: Command): Command {
  return runOptions(cmd)
    .option("--token <token>", "bootstrap token to use ([a-z0-9]{6}.[a-z0-9]{16}; default: a valid existing one, else a new one)")
    .option("--ignore-preflight-errors <ids>", "preflight check IDs whose failures become warnings (comma separated), or all", collectIds)
    .option(
      "--certificate-key <hex>",
      `control planes take the shared CAs and keys from Secret kube-system/kubeadm-certs (init --upload-certs), opened with this key. Visible in ps: prefer ${CERTIFICATE_KEY_ENV}`,
    )
    .option("--discovery-token-ca-cert-hash <sha256:hex>", "with ENDPOINT: the hash of the cluster CA the join line names (repeatable)", (v: string, prev: string[] = []) => [...prev, v])
    .option("--control-plane", "with ENDPOINT: join this machine as a control plane (needs the certificate key)")
    .option("--node-name <name>", "with ENDPOINT: this machine's node name (default: its hostname)")
    .option("--apiserver-advertise-address <ip>", "with ENDPOINT: this machine's node address (default: the address of the default route's interface)");
}

export function register(program: Command): void {
  const join = joinLikeOptions(
    program
      .command("join [endpoint]")
      .description(
        "join the cluster file's other control planes (stacked etcd, one at a time) and workers (TLS bootstrap) to the cluster init made; with ENDPOINT (HOST:PORT), join the machine this runs on, as kubeadm join does",
      ),
  ).action(async (endpoint: string | undefined, o: JoinOptions) => {
    await runJoin(o, undefined, endpoint);
  });
  const phase = join.command("phase").description("run one phase of join (as `kubeadm join phase`)");
  for (const p of joinPhases()) {
    joinLikeOptions(phase.command(`${p.name} [endpoint]`).description(p.description)).action(async (endpoint: string | undefined, _o: JoinOptions, cmd: Command) => {
      await runJoin(cmd.optsWithGlobals<JoinOptions>(), [p.name], endpoint);
    });
  }
}
