// Phase "certs": the PKI of every control plane, from the table in provisioner/pki/certlist.ts.
// The first control plane owns the CAs (created there, or brought by the user); the others get a
// copy of the shared material (CAs, sa.key/sa.pub) read from the first one over its transport, and
// their own leaves. One host at a time, first control plane first.
import { PKI_DIR, KUBERNETES_DIR } from "../constants.js";
import type { ApplyResult, CheckResult, Host, RunContext, Task } from "../engine/task.js";
import { pkiContext, type PkiContext } from "../pki/certlist.js";
import { ensurePki, planOn } from "../pki/ensure.js";
import { prepareKeys } from "../pki/keys.js";
import { needsNewKey } from "../pki/materialize.js";
import { changes, type Decision, type PlanOptions, type SharedCaSet } from "../pki/plan.js";
import { TransportStore } from "./certs-store.js";
import { certificateKeyOf, downloadedCaSet, readCaSetFrom } from "./uploadcerts.js";

import { controlPlanes, firstControlPlane, isFirstControlPlane } from "../plan/topology.js";
import { CERTIFICATE_KEY_ENV } from "../bootstrap/copycerts.js";
import { HostError } from "../errors.js";
import { controlPlaneEtcdPki } from "./externaletcd.js";

/** The node's PKI context in a run (cert dir and kubeconfig dir: kubeadm's, unless options override them). */
export function hostPkiContext(host: Host, ctx: RunContext): PkiContext {
  return pkiContext(ctx.cluster, host.name, {
    source: ctx.source,
    certDir: (ctx.options.certDir as string | undefined) ?? PKI_DIR,
    kubeconfigDir: (ctx.options.kubeconfigDir as string | undefined) ?? KUBERNETES_DIR,
  });
}

/**
 * The CA set (CA certificates and keys, sa.key, sa.pub) another control plane must share:
 * undefined on the first control plane itself; with a certificate key (join --certificate-key),
 * what the Secret kube-system/kubeadm-certs holds, opened with it; otherwise the first control
 * plane's files, read through its transport (a run joining through the API alone has no first
 * control plane to read: it needs the key).
 */
export async function readSharedCaSet(host: Host, ctx: RunContext): Promise<SharedCaSet | undefined> {
  if (isFirstControlPlane(ctx, host)) return undefined;
  if (certificateKeyOf(ctx)) return downloadedCaSet(ctx, host);
  if (ctx.joinTo) throw new HostError(host.name, undefined, `a control plane joining through the API alone needs the certificate key of Secret kube-system/kubeadm-certs (--certificate-key or ${CERTIFICATE_KEY_ENV})`);
  return readCaSetFrom(firstControlPlane(ctx), ctx);
}

/** The cluster CA certificate (public): the one token discovery found, else the first control plane's. */
export async function clusterCa(ctx: RunContext): Promise<Buffer> {
  if (ctx.joinTo) return ctx.joinTo.ca;
  const first = firstControlPlane(ctx);
  const ca = await first.transport.readFile(`${hostPkiContext(first, ctx).certDir}/ca.crt`);
  if (!ca) throw new HostError(first.name, undefined, `${hostPkiContext(first, ctx).certDir}/ca.crt is missing: run \`kubeprov init\` first`);
  return ca;
}

export function summary(ds: Decision[], ctx: RunContext): string {
  const from = certificateKeyOf(ctx) ? "Secret kube-system/kubeadm-certs" : "the first control plane";
  const by = (a: string) => ds.filter((d) => d.action === a).map((d) => d.name);
  const parts = [
    by("create").length ? `create ${by("create").join(", ")}` : "",
    by("reissue").length ? `re-issue ${ds.filter((d) => d.action === "reissue").map((d) => `${d.name} (${d.reason})`).join(", ")}` : "",
    by("copy").length ? `copy ${by("copy").join(", ")} from ${from}` : "",
  ].filter(Boolean);
  return parts.join("; ");
}

export function modeSummary(fixes: { path: string; from: number; to: number }[]): string {
  return fixes.map((f) => `chmod ${f.to.toString(8)} ${f.path} (was ${f.from.toString(8)})`).join(", ");
}

/**
 * The options a host's plan is made with: the shared CA set and, with external etcd, the etcd CA
 * from the first etcd host (whose key stays there); or what the plan has to wait for.
 */
async function hostPlanOptions(ctx: RunContext, base: PlanOptions, shared: SharedCaSet | undefined): Promise<{ options: PlanOptions } | { waitingFor: string }> {
  const etcd = await controlPlaneEtcdPki(ctx, shared);
  if (etcd && "waitingFor" in etcd) return etcd;
  return { options: { ...base, shared, ...etcd?.options } };
}

/** A task that makes part of the table right on each control plane. */
export function pkiTask(spec: { name: string; phase: string; description: string; plan: PlanOptions; after?: string[]; perHost?: boolean; serial?: boolean | "first" }): Task {
  return {
    name: spec.name,
    phase: spec.phase,
    description: spec.description,
    hosts: controlPlanes,
    after: spec.after,
    perHost: spec.perHost,
    serial: spec.serial,
    checkAhead: true,
    // The keys this host's plan will create, generated while the tasks before it run. A control
    // plane that cannot read the shared CAs yet (the first one has not made them) counts its own
    // entries only. A count that turns out too high costs only CPU: the keys never leave memory.
    async prepare(host: Host, ctx: RunContext, signal: AbortSignal): Promise<void> {
      // A node that has its CA (the facts say so) needs new keys only to renew: nothing is read
      // ahead, so a converged run pays nothing for this.
      if (host.facts?.clusterCa && hostPkiContext(host, ctx).certDir === PKI_DIR) return;
      const first = isFirstControlPlane(ctx, host);
      let shared = await readSharedCaSet(host, ctx).catch(() => undefined);
      if (shared && !shared.has("ca.crt")) shared = undefined;
      const opts = await hostPlanOptions(ctx, spec.plan, shared);
      if ("waitingFor" in opts) return;
      const plan = await planOn(new TransportStore(host.transport), hostPkiContext(host, ctx), opts.options);
      // This task's part of the table (a kubeconfig-only plan still lists the CAs it signs with),
      // and the shared entries only where this host makes them.
      const part = (d: Decision) => (d.kind === "kubeconfig" ? spec.plan.kubeconfigs !== false : spec.plan.certs !== false);
      const own = (d: Decision) => part(d) && (first || shared !== undefined || (d.kind !== "ca" && d.kind !== "keypair"));
      prepareKeys(plan.ctx.keySize, plan.decisions.filter((d) => needsNewKey(d) && own(d)).length, signal);
    },
    async check(host: Host, ctx: RunContext): Promise<CheckResult> {
      const pctx = hostPkiContext(host, ctx);
      const shared = await readSharedCaSet(host, ctx);
      if (shared && !shared.has("ca.crt")) {
        return { needed: true, reason: `the CAs come from ${ctx.joinTo ? ctx.joinTo.server : firstControlPlane(ctx).name}, which has none yet` };
      }
      const opts = await hostPlanOptions(ctx, spec.plan, shared);
      if ("waitingFor" in opts) return { needed: true, reason: opts.waitingFor };
      const plan = await planOn(new TransportStore(host.transport), pctx, opts.options);
      const todo = changes(plan);
      for (const w of plan.warnings) ctx.log("warn", w, host, spec.name);
      const reason = [summary(todo, ctx), modeSummary(plan.modeFixes)].filter(Boolean).join("; ");
      return reason ? { needed: true, reason } : { needed: false, reason: `${plan.decisions.length} entries up to date` };
    },
    async apply(host: Host, ctx: RunContext): Promise<ApplyResult> {
      const pctx = hostPkiContext(host, ctx);
      const shared = await readSharedCaSet(host, ctx);
      const opts = await hostPlanOptions(ctx, spec.plan, shared);
      if ("waitingFor" in opts) throw new HostError(host.name, spec.name, opts.waitingFor);
      const r = await ensurePki(new TransportStore(host.transport), pctx, opts.options);
      return { detail: [summary(changes(r.plan), ctx), modeSummary(r.plan.modeFixes)].filter(Boolean).join("; ") || "nothing to do" };
    },
  };
}

export function certsTasks(): Task[] {
  return [
    pkiTask({
      name: "certs/pki",
      phase: "certs",
      description: "CAs, API server/etcd/front-proxy certificates and the service account key (kubeadm's layout)",
      plan: { certs: true, kubeconfigs: false },
      // The first control plane makes the shared CAs; the others read them from it, each on its own.
      serial: "first",
    }),
  ];
}
