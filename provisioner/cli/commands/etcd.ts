// kubeprov etcd snapshot save|restore FILE (-f FILE|--name NAME): backups of the stacked etcd and
// recovery of a cluster that lost its etcd quorum. A snapshot holds every Secret of the cluster:
// it is written with mode 0600 everywhere and its content is never printed or logged.
// A local snapshot that is missing, unreadable or damaged is refused before any host is touched
// (exit 2).
import type { Command } from "commander";
import { createInterface } from "node:readline/promises";
import { accessSync, constants as fsConstants } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Host } from "../../engine/task.js";
import { RuntimeFailure, UsageError } from "../../errors.js";
import { loadTarget } from "../target.js";
import { outputOption, runOptions, targetOptions, type CommonOptions } from "../options.js";
import { openTransport } from "../../transport/pool.js";
import { closeHosts, toHost } from "../../engine/hosts.js";
import { describeStatus, localEtcdutl, readCheckedSnapshot, writeCheckedSnapshot } from "../../etcd/snapshot-file.js";
import { ETCD_DATA_DIR } from "../../constants.js";
import { clusterHasExternalEtcd, externalEtcdRefusal, isEtcdHost } from "../../plan/topology.js";

interface SaveOptions extends CommonOptions {
  node?: string;
}

interface RestoreOptions extends CommonOptions {
  force: boolean;
}

const isControlPlane = (h: { roles: string[] }) => h.roles.includes("control-plane");

async function save(file: string, o: SaveOptions): Promise<void> {
  const { cluster } = await loadTarget(o);
  // The etcd members' hosts: the etcd hosts with external etcd, else the control planes.
  const external = clusterHasExternalEtcd(cluster);
  const cps = cluster.spec.hosts.filter(external ? isEtcdHost : isControlPlane);
  const what = external ? "an etcd host" : "a control plane";
  if (o.node && !cps.some((h) => h.name === o.node)) {
    throw new UsageError(`--node ${o.node}: not ${what} of ${cluster.metadata.name} (${cps.map((h) => h.name).join(", ")})`);
  }
  const candidates = o.node ? cps.filter((h) => h.name === o.node) : cps;
  // Where the snapshot goes is checked before any host is asked for one.
  try {
    accessSync(dirname(resolve(file)), fsConstants.W_OK);
  } catch (e) {
    throw new UsageError(`cannot write ${file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "its directory does not exist" : "its directory is not writable"}`);
  }
  const etcdutl = localEtcdutl(cluster);
  const { takeSnapshot } = await import("../../etcd/snapshot-save.js");
  const t0 = Date.now();
  const errors: string[] = [];
  // The first control plane (file order) that answers and whose etcd member gives a snapshot.
  for (const spec of candidates) {
    let host: Host;
    try {
      host = toHost(spec, await openTransport(cluster, spec));
    } catch (e) {
      errors.push(`${spec.name}: ${(e as Error).message}`);
      continue;
    }
    let data: Buffer;
    try {
      data = await takeSnapshot(host);
    } catch (e) {
      const details = (e as { details?: string }).details;
      errors.push(`${spec.name}: ${(e as Error).message}${details ? `\n  ${details}` : ""}`);
      continue;
    } finally {
      await closeHosts([host]);
    }
    const status = await writeCheckedSnapshot(file, data, etcdutl);
    const durationMs = Date.now() - t0;
    if (o.output === "json") {
      process.stdout.write(`${JSON.stringify({ file, host: spec.name, mode: "0600", ...status, durationMs })}\n`);
    } else {
      process.stdout.write(`saved ${file} (mode 0600) from ${spec.name} in ${(durationMs / 1000).toFixed(1)} s: ${describeStatus(status)}\n`);
    }
    return;
  }
  throw new RuntimeFailure(`no ${external ? "etcd host" : "control plane"} gave an etcd snapshot (${candidates.map((h) => h.name).join(", ")})`, errors.join("\n"));
}

async function restore(file: string, o: RestoreOptions): Promise<void> {
  const { cluster, source } = await loadTarget(o);
  const refusal = externalEtcdRefusal(cluster, "etcd snapshot restore");
  if (refusal) throw new UsageError(`${source}: ${refusal}; restore the etcd hosts with etcdutl snapshot restore by hand (etcd's disaster recovery guide), then start their etcd units`);
  const cps = cluster.spec.hosts.filter(isControlPlane);
  if (!cps.length) throw new UsageError(`${source}: the cluster has no control-plane host`);
  const { data, status } = await readCheckedSnapshot(file, localEtcdutl(cluster));
  const describe = `snapshot ${file} (${describeStatus(status)})`;
  process.stderr.write(`${describe}: ok\n`);
  const names = cps.map((h) => h.name).join(", ");
  if (!o.force && !o.dryRun) {
    if (!process.stdin.isTTY) throw new UsageError(`restore replaces the etcd data of ${names}: pass --force to confirm`);
    const rl = createInterface({ input: process.stdin, output: process.stderr });
    const answer = await rl.question(
      `restore stops etcd and the API servers on ${names} and replaces the cluster's etcd data with the ${describe}; what was written since is lost. Continue? [y/N] `,
    );
    rl.close();
    if (!/^y(es)?$/i.test(answer.trim())) throw new UsageError("restore cancelled");
  }
  const { restoreStamp, keptDataDir } = await import("../../tasks/etcdrestore.js");
  const { restorePlan } = await import("../../plan/restore.js");
  const { runPipeline } = await import("../../engine/pipeline.js");
  const { factsTask } = await import("../../tasks/facts.js");
  const stamp = restoreStamp(new Date());
  const t0 = Date.now();
  await runPipeline({
    cluster,
    source,
    tasks: restorePlan({ snapshot: data, stamp, describe }),
    facts: factsTask,
    dryRun: o.dryRun,
    output: o.output,
    concurrency: o.concurrency,
    options: { verbose: o.verbose ?? 0 },
  });
  if (!o.dryRun) {
    process.stderr.write(
      `etcd restored from ${file} in ${((Date.now() - t0) / 1000).toFixed(1)} s: ${cps.length} member(s), API server ready; ` +
        `each control plane's previous ${ETCD_DATA_DIR} is kept in ${keptDataDir(stamp)}\n`,
    );
  }
}

export function register(program: Command): void {
  const etcd = program.command("etcd").description("the cluster's stacked etcd: snapshots (backup) and restore (disaster recovery)");
  const snapshot = etcd.command("snapshot").description("save an etcd snapshot to a local file, or restore the cluster's etcd from one");
  const saveCmd = snapshot
    .command("save <file>")
    .description("take an etcd snapshot on a control plane and write it to FILE (mode 0600), checked with etcdutl snapshot status")
    .option("--node <name>", "the control plane (or, with external etcd, the etcd host) to take it on (default: the first one, in file order, whose etcd answers)");
  targetOptions(saveCmd);
  outputOption(saveCmd);
  saveCmd.action((file: string, o: SaveOptions) => save(file, o));
  runOptions(
    snapshot
      .command("restore <file>")
      .description(
        "recover a cluster that lost etcd's quorum: stop etcd and the API servers, rebuild etcd from FILE on the first control plane, join the others again (needs every host reachable)",
      ),
  )
    .option("--force", "do not ask for confirmation", false)
    .action((file: string, o: RestoreOptions) => restore(file, o));
}
