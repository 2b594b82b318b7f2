// kubeprov join -f FILE|--name NAME: every host of the cluster file but the first control plane
// joins the cluster init made there: other control planes one at a time (stacked etcd learner,
// promoted once in sync), workers by TLS bootstrap with a bootstrap token (kubeadm join).
// Idempotent: joined hosts report nothing to do. `join phase <name>` runs one phase.
import type { Command } from "commander";
import { loadTarget } from "../target.js";
import { certificateKeyOption, runOptions, type CommonOptions } from "../options.js";
import { CERTIFICATE_KEY_ENV } from "../../bootstrap/copycerts.js";
import { validateTokenOptions } from "../../tasks/bootstrap.js";
import { collectIds, validateIgnorePreflightErrors } from "../../tasks/preflight.js";
import { joinPhases } from "../../plan/init.js";

type JoinOptions = CommonOptions & { token?: string; ignorePreflightErrors?: string[]; certificateKey?: string };

async function runJoin(o: JoinOptions, onlyPhases?: string[]): Promise<void> {
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

function joinLikeOptions(cmd: Command): Command {
  return runOptions(cmd)
    .option("--token <token>", "bootstrap token to use ([a-z0-9]{6}.[a-z0-9]{16}; default: a valid existing one, else a new one)")
    .option("--ignore-preflight-errors <ids>", "preflight check IDs whose failures become warnings (comma separated), or all", collectIds)
    .option(
      "--certificate-key <hex>",
      `control planes take the shared CAs and keys from Secret kube-system/kubeadm-certs (init --upload-certs), opened with this key. Visible in ps: prefer ${CERTIFICATE_KEY_ENV}`,
    );
}

export function register(program: Command): void {
  const join = joinLikeOptions(
    program.command("join").description("join the cluster file's other control planes (stacked etcd, one at a time) and workers (TLS bootstrap) to the cluster init made"),
  ).action(async (o: JoinOptions) => {
    await runJoin(o);
  });
  const phase = join.command("phase").description("run one phase of join (as `kubeadm join phase`)");
  for (const p of joinPhases()) {
    joinLikeOptions(phase.command(p.name).description(p.description)).action(async (_o: JoinOptions, cmd: Command) => {
      await runJoin(cmd.optsWithGlobals<JoinOptions>(), [p.name]);
    });
  }
}
