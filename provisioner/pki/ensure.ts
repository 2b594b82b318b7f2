// The one entry point that makes a node's PKI right: check the directories, read what exists,
// plan (pure), and only when the whole plan is free of errors, generate and write.
import { RuntimeFailure } from "../errors.js";
import { CAS, type PkiContext } from "./certlist.js";
import { materialize, type FileWrite } from "./materialize.js";
import { planModeFixes, planPki, snapshotPaths, type PkiPlan, type PlanOptions } from "./plan.js";
import { readSnapshot, writeAll, type PkiStore } from "./store.js";

/** The existing PKI is in a state kubeprov will not touch (foreign leaf, mismatched CA pair, …): exit 1. */
export class PkiStateError extends RuntimeFailure {
  constructor(
    where: string,
    /** Every problem (also in details, so task failures show them all). */
    readonly pkiProblems: string[],
  ) {
    const problems = pkiProblems;
    super(
      `${where}: ${problems.length === 1 ? `${problems[0]}; nothing was written` : `${problems.length} problems with the existing PKI; nothing was written`}`,
      problems.length > 1 ? problems.join("\n") : undefined,
    );
    this.name = "PkiStateError";
  }
}

export interface EnsureOptions extends PlanOptions {
  /** Plan only: write nothing. */
  dryRun?: boolean;
}

export interface EnsureResult {
  plan: PkiPlan;
  /** Files written (empty in a dry run or when everything was kept). */
  written: FileWrite[];
}

/** Reads, plans; throws PkiStateError when the plan has errors (nothing written). */
export async function planOn(store: PkiStore, ctx: PkiContext, opts: PlanOptions = {}): Promise<PkiPlan> {
  const dirProblems = (await Promise.all([ctx.certDir, ctx.kubeconfigDir].map((d) => store.checkDir(d)))).filter((x): x is string => !!x);
  if (dirProblems.length) throw new PkiStateError(store.where, [...new Set(dirProblems)]);
  const paths = snapshotPaths(ctx, opts);
  const [snapshot, modes] = await Promise.all([readSnapshot(store, paths), store.modes(paths)]);
  const plan = planPki(ctx, snapshot, opts);
  if (plan.errors.length) throw new PkiStateError(store.where, plan.errors);
  planModeFixes(plan, modes);
  return plan;
}

export async function ensurePki(store: PkiStore, ctx: PkiContext, opts: EnsureOptions = {}): Promise<EnsureResult> {
  const plan = await planOn(store, ctx, opts);
  if (opts.dryRun) return { plan, written: [] };
  for (const f of plan.modeFixes) await store.chmod(f.path, f.to);
  if (!plan.decisions.some((d) => d.action !== "keep")) return { plan, written: [] };
  const writes = await materialize(plan);
  await writeAll(store, writes, (p) => CAS.some((c) => p === `${ctx.certDir}/${c.baseName}.crt` || p === `${ctx.certDir}/${c.baseName}.key`));
  return { plan, written: writes };
}
