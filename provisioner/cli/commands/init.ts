// kubeprov init -f FILE|--name NAME: what `kubeadm init` does, on the cluster's first control plane.
// `kubeprov init phase <name>` runs one phase (generated from the phase list, as kubeadm's).
import { InvalidArgumentError, type Command } from "commander";
import { UsageError } from "../../errors.js";
import { loadTarget } from "../target.js";
import { runOptions, type CommonOptions } from "../options.js";
import type { RunSummary } from "../../engine/runner.js";
import type { RunContext } from "../../engine/task.js";
import { initPhases, initTasks } from "../../plan/init.js";
import { validateTokenOptions } from "../../tasks/bootstrap.js";
import { collectIds, validateIgnorePreflightErrors } from "../../tasks/preflight.js";
import { CERTIFICATE_KEY_ENV, generateCertificateKey } from "../../bootstrap/copycerts.js";
import { certificateKeyOption } from "../options.js";

interface InitOptions extends CommonOptions {
  skipPhases?: string[];
  token?: string;
  tokenTtl?: string;
  waitTimeout?: number;
  ignorePreflightErrors?: string[];
  uploadCerts?: boolean;
  certificateKey?: string;
}

export function parsePhaseList(value: string): string[] {
  const list = value.split(",").map((s) => s.trim()).filter(Boolean);
  if (!list.length) throw new InvalidArgumentError("a comma-separated list of phases");
  return list;
}

function parseSeconds(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1) throw new InvalidArgumentError(`a number of seconds (got "${value}")`);
  return Number(value);
}

async function runInit(o: InitOptions, onlyPhases?: string[]): Promise<RunSummary> {
  // Bad flags are refused before any file is read or any host is touched (exit 2).
  validateTokenOptions({ token: o.token, tokenTtl: o.tokenTtl });
  const ignorePreflightErrors = validateIgnorePreflightErrors(o.ignorePreflightErrors);
  const certificateKey = o.uploadCerts ? (certificateKeyOption(o.certificateKey) ?? generateCertificateKey()) : undefined;
  if (o.uploadCerts && o.output === "json" && !certificateKeyOption(o.certificateKey))
    throw new UsageError(`--upload-certs with -o json: give the key (--certificate-key or ${CERTIFICATE_KEY_ENV}); a generated one would never be shown`);
  const known: string[] = initPhases().map((p) => p.name);
  const unknown = (o.skipPhases ?? []).filter((p) => !known.includes(p));
  if (unknown.length) throw new UsageError(`--skip-phases: unknown phase ${unknown.join(", ")}; the phases of init are: ${known.join(", ")}`);
  const { cluster, source } = await loadTarget(o);
  const { runPipeline } = await import("../../engine/pipeline.js");
  const { factsTask } = await import("../../tasks/facts.js");
  const tasks = initTasks();
  const present = new Set(tasks.map((t) => t.phase));
  const closing = o.output === "text" && !o.dryRun && (!onlyPhases || onlyPhases.includes("bootstrap-token") || (certificateKey !== undefined && onlyPhases.includes("upload-certs")));
  let closingLines: string | undefined;
  const summary = await runPipeline({
    cluster,
    source,
    tasks,
    facts: factsTask,
    dryRun: o.dryRun,
    output: o.output,
    concurrency: o.concurrency,
    skipPhases: o.skipPhases?.filter((p) => present.has(p)),
    onlyPhases,
    options: {
      ...(o.token !== undefined ? { token: o.token } : {}),
      ...(o.tokenTtl !== undefined ? { tokenTtl: o.tokenTtl } : {}),
      ...(o.waitTimeout !== undefined ? { waitTimeoutMs: o.waitTimeout * 1000 } : {}),
      ...(certificateKey ? { uploadCerts: true, certificateKey } : {}),
      ignorePreflightErrors,
      verbose: o.verbose ?? 0,
    },
    // The join lines are read on the run's own connection and context, before the lock is released;
    // this runs only when every task succeeded (a failed run throws), so the certificate key shown
    // here is always one whose Secret was uploaded.
    afterRun: closing
      ? async (_hosts, ctx) => {
          closingLines = await closingText(ctx, o, certificateKey);
        }
      : undefined,
  });
  if (closing) process.stdout.write("\n" + (closingLines ?? fallbackText(o)));
  return summary;
}

/** What init prints at the end when the join lines cannot be read. */
function fallbackText(o: InitOptions): string {
  const target = o.name ? `--name ${o.name}` : `-f ${o.file}`;
  return `Your Kubernetes control plane is ready.\n  kubeprov kubeconfig ${target} > admin.conf && kubectl --kubeconfig admin.conf get nodes\n  kubeprov token create ${target} --print-join-command\n`;
}

/**
 * What init prints at the end, like kubeadm: where the admin kubeconfig is and the join lines
 * (joinCommands) with the token the bootstrap phase keeps, read from the cluster through the run's context.
 */
async function closingText(ctx: RunContext, o: InitOptions, certificateKey?: string): Promise<string> {
  try {
    const [{ apiClient, closeApiClients }, { listTokens, pickJoinToken }, { formatToken }, { joinCommands }] = await Promise.all([
      import("../../bootstrap/api.js"),
      import("../../tasks/bootstrap.js"),
      import("../../bootstrap/token.js"),
      import("../../bootstrap/joincmd.js"),
    ]);
    try {
      const token = pickJoinToken(await listTokens(await apiClient(ctx)));
      return await joinCommands(ctx, token ? { token: formatToken(token), certificateKey } : {});
    } finally {
      await closeApiClients(ctx);
    }
  } catch {
    return fallbackText(o);
  }
}

function initLikeOptions(cmd: Command): Command {
  return runOptions(cmd)
    .option("--token <token>", "bootstrap token to create ([a-z0-9]{6}.[a-z0-9]{16}; default: generated)")
    .option("--token-ttl <duration>", "bootstrap token lifetime, e.g. 24h; 0 never expires")
    .option("--wait-timeout <seconds>", "how long to wait for the control plane before diagnosing (default 100)", parseSeconds)
    .option("--ignore-preflight-errors <ids>", "preflight check IDs whose failures become warnings (comma separated), or all", collectIds)
    .option("--upload-certs", "seal the shared CAs and keys into Secret kube-system/kubeadm-certs (deleted after 2 h) for `join --certificate-key`", false)
    .option("--certificate-key <hex>", `with --upload-certs: the key (64 hex characters; default: generated and printed once). Visible in ps: prefer ${CERTIFICATE_KEY_ENV}`);
}

export function register(program: Command): void {
  const init = initLikeOptions(
    program
      .command("init")
      .description("set up the first control plane of a cluster (kubeadm init): preflight, prepare, certs, kubeconfig, kubelet, etcd, control plane, bootstrap, addons"),
  )
    .option("--skip-phases <phases>", "comma-separated phases not to run", parsePhaseList)
    .action(async (o: InitOptions) => {
      await runInit(o);
    });
  const phase = init.command("phase").description("run one phase of init (as `kubeadm init phase`)");
  // One sub-command per phase of the plan, as kubeadm's `init phase <name>`.
  const PHASES: Array<[string, string]> = initPhases().map((p) => [p.name, p.description]);
  for (const [name, description] of PHASES) {
    // `init phase etcd --name X`: commander may hand --name to `init` (it has the same options);
    // optsWithGlobals() merges both, so the flags work wherever they stand.
    initLikeOptions(phase.command(name).description(description)).action(async (_o: InitOptions, cmd: Command) => {
      await runInit(cmd.optsWithGlobals<InitOptions>(), [name]);
    });
  }
}
