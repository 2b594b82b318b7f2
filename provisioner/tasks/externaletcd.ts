// External etcd (kubeadm's "external etcd" topology): the hosts with role etcd run an etcd cluster
// of their own, each member a systemd unit (there is no kubelet on them), made before any control
// plane. Their PKI follows kubeadm's guide for etcd hosts: the first etcd host owns the etcd CA
// (etcd/ca.crt and etcd/ca.key); every etcd host has its own etcd/server, etcd/peer and
// etcd/healthcheck-client for its name and address, and the others hold the CA certificate only.
// The control planes then run no etcd: they hold etcd/ca.crt and apiserver-etcd-client.{crt,key}
// (signed with the CA key read from the first etcd host, which is never written on them), and
// kube-apiserver's --etcd-servers lists every etcd host.
// The members start together from a static initial cluster of every etcd host in the file.
import { BIN_DIR, ETCD_DATA_DIR, PORT_ETCD_CLIENT } from "../constants.js";
import { HostError } from "../errors.js";
import type { ApplyResult, CheckResult, Host, RunContext, Task } from "../engine/task.js";
import { ensurePki, planOn } from "../pki/ensure.js";
import { changes, type PkiPart, type PlanOptions, type SharedCaSet } from "../pki/plan.js";
import { TransportStore } from "./certs-store.js";
import { componentFlags, flagsToArgs, initialClusterOf, urlHost } from "./controlplane-flags.js";
export { initialClusterOf };
import { externalEtcdHosts } from "../plan/topology.js";
import { renderTemplate } from "../render.js";
import type { Cluster } from "../spec/schema.js";
import { shq } from "../transport/transport.js";
import { hostPkiContext, modeSummary, summary } from "./certs.js";
import { unitPath } from "./controlplane.js";
import { etcdctlCommand, etcdMemberAddTask, etcdPromoteTask, listMembers } from "./etcdmember.js";
import { execStartLine } from "./kubelet.js";
import { serviceTask } from "./service.js";

export const ETCD_EXTERNAL_PHASE = "etcd-external";
export const ETCD_EXTERNAL_CERTS_TASK = "etcd-external/certs";
export const ETCD_EXTERNAL_MEMBER_TASK = "etcd-external/member";
export const ETCD_EXTERNAL_HEALTH_TASK = "etcd-external/health";
export const ETCD_EXTERNAL_ADD_TASK = "etcd-external/member-add";
export const ETCD_EXTERNAL_PROMOTE_TASK = "etcd-external/promote";
/** How long the members may take to elect a leader once they all run. */
export const ETCD_HEALTH_TIMEOUT_MS = 90_000;

/** What an etcd host holds of the certificate table. */
export const ETCD_HOST_PKI: PkiPart = { cas: ["etcd-ca"], leaves: ["etcd-server", "etcd-peer", "etcd-healthcheck-client"], serviceAccount: false };
/** What a control plane holds with external etcd: no etcd serving, peer or health-check certificates. */
export const CONTROL_PLANE_EXTERNAL_ETCD_PKI: PkiPart = {
  cas: ["ca", "front-proxy-ca", "etcd-ca"],
  leaves: ["apiserver", "apiserver-kubelet-client", "front-proxy-client", "apiserver-etcd-client"],
  serviceAccount: true,
};
const ETCD_CA_FILES = ["etcd/ca.crt", "etcd/ca.key"];

/** The etcd CA (certificate and key) of the first etcd host, which owns it, read over its transport. */
export async function readEtcdCa(ctx: RunContext): Promise<SharedCaSet> {
  const first = externalEtcdHosts(ctx)[0];
  const set: SharedCaSet = new Map();
  if (!first) return set;
  const certDir = hostPkiContext(first, ctx).certDir;
  for (const rel of ETCD_CA_FILES) {
    const data = await first.transport.readFile(`${certDir}/${rel}`);
    if (data) set.set(rel, data);
  }
  return set;
}

const noCaYet = (ctx: RunContext) => `the etcd CA comes from ${externalEtcdHosts(ctx)[0].name} (the first etcd host), which has none yet`;

/**
 * A control plane's PKI plan options with external etcd (undefined with stacked etcd): its part of
 * the table, and the etcd CA from the first etcd host, whose key signs apiserver-etcd-client here
 * but is not written (kubeadm's external etcd layout has no etcd CA key on control planes).
 */
export async function controlPlaneEtcdPki(ctx: RunContext, shared: SharedCaSet | undefined): Promise<{ options: PlanOptions } | { waitingFor: string } | undefined> {
  if (!externalEtcdHosts(ctx).length) return undefined;
  const ca = await readEtcdCa(ctx);
  if (!ETCD_CA_FILES.every((f) => ca.has(f))) return { waitingFor: noCaYet(ctx) };
  const merged: SharedCaSet = new Map([...(shared ?? []), ...ca]);
  return { options: { shared: merged, part: CONTROL_PLANE_EXTERNAL_ETCD_PKI, signOnly: ["etcd-ca"] } };
}

/** An etcd host's PKI plan options: the first one creates the CA, the others sign with its key without keeping it. */
async function etcdHostPki(host: Host, ctx: RunContext): Promise<{ options: PlanOptions } | { waitingFor: string }> {
  const base: PlanOptions = { certs: true, kubeconfigs: false, part: ETCD_HOST_PKI };
  if (externalEtcdHosts(ctx)[0].name === host.name) return { options: base };
  const ca = await readEtcdCa(ctx);
  if (!ETCD_CA_FILES.every((f) => ca.has(f))) return { waitingFor: noCaYet(ctx) };
  return { options: { ...base, shared: ca, signOnly: ["etcd-ca"] } };
}

const hasEtcdData = async (h: Host): Promise<boolean> =>
  (await h.transport.exec(`test -d ${shq(`${ETCD_DATA_DIR}/member`)} && echo yes || echo no`, { sudo: true, check: false })).stdout.trim() === "yes";

/**
 * Whether this etcd host joins a running external etcd: it has no etcd data while another etcd
 * host has some (a host added to the file later). Decided once per run for every etcd host at
 * once, before any etcd of this run starts (a member just started has data too).
 */
async function joinsRunningEtcd(host: Host, ctx: RunContext): Promise<boolean> {
  const key = `${ETCD_EXTERNAL_PHASE}/joining`;
  let joining = ctx.shared.get(key) as Promise<Set<string>> | undefined;
  if (!joining) {
    joining = (async () => {
      const hosts = externalEtcdHosts(ctx);
      const data = await Promise.all(hosts.map(hasEtcdData));
      return new Set(hosts.filter((_, i) => !data[i] && data.some(Boolean)).map((h) => h.name));
    })();
    ctx.shared.set(key, joining);
  }
  return (await joining).has(host.name);
}


/** The etcd hosts' certificates, one host at a time, the first etcd host (the CA's owner) first. */
function etcdCertsTask(hosts: (ctx: RunContext) => Host[], after: string[]): Task {
  return {
    name: ETCD_EXTERNAL_CERTS_TASK,
    phase: ETCD_EXTERNAL_PHASE,
    description: "etcd CA (first etcd host) and each etcd host's etcd/server, etcd/peer, etcd/healthcheck-client",
    hosts,
    after,
    serial: true,
    async check(host, ctx): Promise<CheckResult> {
      const p = await etcdHostPki(host, ctx);
      if ("waitingFor" in p) return { needed: true, reason: p.waitingFor };
      const plan = await planOn(new TransportStore(host.transport), hostPkiContext(host, ctx), p.options);
      const reason = [summary(changes(plan), ctx), modeSummary(plan.modeFixes)].filter(Boolean).join("; ");
      return reason ? { needed: true, reason } : { needed: false, reason: `${plan.decisions.length} entries up to date` };
    },
    async apply(host, ctx): Promise<ApplyResult> {
      const p = await etcdHostPki(host, ctx);
      if ("waitingFor" in p) throw new HostError(host.name, ETCD_EXTERNAL_CERTS_TASK, p.waitingFor);
      const r = await ensurePki(new TransportStore(host.transport), hostPkiContext(host, ctx), p.options);
      return { detail: [summary(changes(r.plan), ctx), modeSummary(r.plan.modeFixes)].filter(Boolean).join("; ") || "nothing to do" };
    },
  };
}

/**
 * The systemd unit of an external etcd member. Pure. `initial` replaces the static initial
 * cluster of every etcd host: a member keeps the one it started with (the file may have grown
 * since), and a host joining a running etcd names the members etcd holds once it was added.
 */
export function renderExternalEtcdUnit(cluster: Cluster, host: Host, initial?: { cluster: string; state: string }): string {
  const flags = componentFlags("etcd", cluster, host);
  if (initial) {
    flags.set("initial-cluster", initial.cluster);
    flags.set("initial-cluster-state", initial.state);
  }
  return renderTemplate("systemd/etcd-external.service", { execStart: execStartLine(`${BIN_DIR}/etcd`, flagsToArgs(flags)) });
}

/** The initial cluster this host's unit names (see renderExternalEtcdUnit); undefined: every etcd host, new. */
async function initialClusterFor(host: Host, ctx: RunContext): Promise<{ cluster: string; state: string } | undefined> {
  if (await joinsRunningEtcd(host, ctx)) {
    const members = await listMembers(ctx, host);
    return { cluster: members.map((m) => `${m.name || host.name}=${m.peerURLs[0]}`).join(","), state: "existing" };
  }
  if (!(await hasEtcdData(host))) return undefined;
  const unit = (await host.transport.readFile(unitPath("etcd")))?.toString("utf8");
  return unit ? initialClusterOf(unit) : undefined;
}

/** Only on a host that joins a running external etcd (member add, promote); elsewhere nothing to do. */
function whenJoining(task: Task, initialReason: string): Task {
  return {
    ...task,
    async check(host, ctx) {
      if (!(await joinsRunningEtcd(host, ctx))) return { needed: false, reason: initialReason };
      return task.check(host, ctx);
    },
  };
}

/** etcd's own client endpoint on this host. */
export const localEtcdEndpoint = (host: Host): string => `https://${urlHost(host.nodeIP)}:${PORT_ETCD_CLIENT}`;

const healthy = async (host: Host): Promise<{ ok: boolean; why: string }> => {
  const r = await host.transport.exec(etcdctlCommand("endpoint health", localEtcdEndpoint(host)), { sudo: true, check: false, timeoutMs: 20_000 });
  return { ok: r.code === 0, why: (r.stderr || r.stdout).trim().split("\n").pop() ?? "" };
};

/** Waits until this member answers healthy (it needs a quorum of the others, which start alongside). */
function etcdHealthTask(hosts: (ctx: RunContext) => Host[], after: string[]): Task {
  return {
    name: ETCD_EXTERNAL_HEALTH_TASK,
    phase: ETCD_EXTERNAL_PHASE,
    description: "every external etcd member answers healthy (a leader was elected)",
    hosts,
    after,
    async check(host): Promise<CheckResult> {
      const h = await healthy(host);
      return h.ok ? { needed: false, reason: `etcd on ${localEtcdEndpoint(host)} healthy` } : { needed: true, reason: `wait for etcd on ${localEtcdEndpoint(host)} (${h.why})` };
    },
    async apply(host): Promise<ApplyResult> {
      const t0 = Date.now();
      let last = "";
      while (Date.now() - t0 < ETCD_HEALTH_TIMEOUT_MS) {
        const h = await healthy(host);
        if (h.ok) return { detail: `healthy after ${((Date.now() - t0) / 1000).toFixed(1)} s` };
        last = h.why;
        await new Promise((r) => setTimeout(r, 1000));
      }
      const log = await host.transport.exec("journalctl -u etcd -n 15 --no-pager -o cat", { sudo: true, check: false });
      throw new HostError(host.name, ETCD_EXTERNAL_HEALTH_TASK, `etcd did not answer healthy within ${ETCD_HEALTH_TIMEOUT_MS / 1000} s (${last})`, log.stdout.trim());
    },
  };
}

/**
 * The external etcd cluster: certificates, then every member's unit, then every member healthy.
 * A host added to the file later joins as kubeadm's stacked members do: added as a learner (one at
 * a time), its unit started with the members etcd holds and state existing, promoted once in sync.
 */
export function externalEtcdTasks(opts: { hosts: (ctx: RunContext) => Host[]; after: string[] }): Task[] {
  const certs = etcdCertsTask(opts.hosts, opts.after);
  const add = whenJoining(
    etcdMemberAddTask({ hosts: opts.hosts, after: [certs.name], name: ETCD_EXTERNAL_ADD_TASK, phase: ETCD_EXTERNAL_PHASE }),
    "a member of the etcd cluster, or of the initial cluster being made",
  );
  const member = serviceTask({
    name: ETCD_EXTERNAL_MEMBER_TASK,
    phase: ETCD_EXTERNAL_PHASE,
    description: `etcd as the systemd unit ${unitPath("etcd")} (initial cluster: every etcd host)`,
    unit: "etcd",
    hosts: opts.hosts,
    after: [...opts.after, certs.name, add.name],
    perHost: true,
    files: async (host, ctx) => [{ path: unitPath("etcd"), content: renderExternalEtcdUnit(ctx.cluster, host, await initialClusterFor(host, ctx)), mode: 0o644 }],
    beforeStart: async (host) => void (await host.transport.exec(`mkdir -p ${shq(ETCD_DATA_DIR)} && chmod 0700 ${shq(ETCD_DATA_DIR)}`, { sudo: true })),
  });
  const promote = whenJoining(
    etcdPromoteTask({ hosts: opts.hosts, after: [member.name], name: ETCD_EXTERNAL_PROMOTE_TASK, phase: ETCD_EXTERNAL_PHASE }),
    "not a learner of this run",
  );
  return [certs, add, member, promote, etcdHealthTask(opts.hosts, [member.name, promote.name])];
}
