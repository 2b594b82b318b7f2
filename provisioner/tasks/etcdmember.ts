// Stacked etcd members of joining control planes, kubeadm's way: the new member is added as a
// learner (it does not count for quorum while it catches up), its etcd starts with
// --initial-cluster-state=existing, and once it is in sync with the leader it is promoted to a
// voting member. Membership is read from the cluster (etcdctl on a control plane that already is a
// member), so a re-run never adds a member twice. A join that fails before promotion removes its
// learner again (and the etcd it started), so the cluster keeps its quorum and a re-run starts clean.
import { BIN_DIR, ETCD_DATA_DIR, PKI_DIR, PORT_ETCD_CLIENT, PORT_ETCD_PEER } from "../constants.js";
import { HostError } from "../errors.js";
import type { CheckResult, Host, RunContext, Task } from "../engine/task.js";
import { initialClusterOf, urlHost, type Flags } from "./controlplane-flags.js";
import { controlPlaneAddresses, etcdMembers } from "../plan/topology.js";
import { shq } from "../transport/transport.js";
import { manifestPath, unitPath } from "./controlplane.js";

export const ETCD_MEMBER_ADD_TASK = "control-plane-join/etcd-member-add";
export const ETCD_MEMBER_PROMOTE_TASK = "control-plane-join/etcd-promote";
/** How long a learner may take to catch up with the leader before the join gives up. */
export const PROMOTE_TIMEOUT_MS = 120_000;
/** How long a member add waits for another learner (etcd allows one at a time) to be promoted. */
export const LEARNER_WAIT_MS = 180_000;

export interface EtcdMember {
  /** Hex member ID, as etcdctl prints it. */
  id: string;
  started: boolean;
  /** Empty while unstarted. */
  name: string;
  peerURLs: string[];
  clientURLs: string[];
  learner: boolean;
}

/** etcdctl on an etcd member's host, authenticated with the etcd health-check client certificate. */
export function etcdctlCommand(args: string, endpoint = `https://127.0.0.1:${PORT_ETCD_CLIENT}`): string {
  return [
    `ETCDCTL_API=3 ${BIN_DIR}/etcdctl`,
    `--endpoints=${endpoint}`,
    `--cacert=${PKI_DIR}/etcd/ca.crt`,
    `--cert=${PKI_DIR}/etcd/healthcheck-client.crt`,
    `--key=${PKI_DIR}/etcd/healthcheck-client.key`,
    "--dial-timeout=3s --command-timeout=8s",
    args,
  ].join(" ");
}

/** Parses `etcdctl member list -w simple`: "id, started|unstarted, name, peerURLs, clientURLs, isLearner". Pure. */
export function parseMemberList(text: string): EtcdMember[] {
  const out: EtcdMember[] = [];
  for (const line of text.split("\n")) {
    const parts = line.trim().split(", ");
    if (parts.length < 6 || !/^[0-9a-f]+$/.test(parts[0])) continue;
    out.push({
      id: parts[0],
      started: parts[1] === "started",
      name: parts[2],
      peerURLs: parts[3].split(",").filter(Boolean),
      clientURLs: parts[4].split(",").filter(Boolean),
      learner: parts[5] === "true",
    });
  }
  return out;
}

export const peerURL = (host: Host): string => `https://${urlHost(host.nodeIP)}:${PORT_ETCD_PEER}`;

/** The member that is this host (by peer URL, which is unique), if any. */
export function memberOf(members: EtcdMember[], host: Host): EtcdMember | undefined {
  return members.find((m) => m.peerURLs.includes(peerURL(host)));
}

/**
 * Runs an etcdctl command on an etcd member's host whose etcd answers (file order, `exclude`
 * skipped): the control planes with stacked etcd, the etcd hosts with external etcd. The cluster is
 * the source of truth, and any healthy member can change membership.
 */
export async function onEtcdMember(ctx: RunContext, args: string, exclude?: Host): Promise<{ host: Host; stdout: string }> {
  if (ctx.joinTo) return fromJoiningHost(ctx, args, exclude ?? ctx.hosts[0]!);
  const errors: string[] = [];
  for (const h of etcdMembers(ctx)) {
    if (exclude && h.name === exclude.name) continue;
    const r = await h.transport.exec(etcdctlCommand(args), { sudo: true, check: false, timeoutMs: 20_000 });
    if (r.code === 0) return { host: h, stdout: r.stdout };
    errors.push(`${h.name}: ${(r.stderr || r.stdout).trim().split("\n").pop()}`);
  }
  throw new HostError(exclude?.name ?? ctx.hosts[0].name, undefined, `no etcd member answered \`etcdctl ${args.split(" ")[0]} ${args.split(" ")[1] ?? ""}\``, errors.join("\n"));
}

/**
 * A run that joins through the API alone reaches no member's host: etcdctl runs on the joining
 * host itself (its health-check client certificate is signed by the etcd CA it downloaded),
 * against the client URLs of the cluster file's other control planes; etcdctl uses the first
 * that answers.
 */
async function fromJoiningHost(ctx: RunContext, args: string, self: Host): Promise<{ host: Host; stdout: string }> {
  const others = controlPlaneAddresses(ctx).filter((h) => !ctx.hosts.some((o) => o.name === h.name));
  if (!others.length) throw new HostError(self.name, undefined, "the cluster file stored in the cluster names no other control plane to reach etcd through");
  const endpoints = others.map((h) => `https://${urlHost(h.nodeIP)}:${PORT_ETCD_CLIENT}`).join(",");
  const r = await self.transport.exec(etcdctlCommand(args, endpoints), { sudo: true, check: false, timeoutMs: 20_000 });
  if (r.code === 0) return { host: self, stdout: r.stdout };
  throw new HostError(self.name, undefined, `no etcd member answered \`etcdctl ${args.split(" ").slice(0, 2).join(" ")}\` at ${endpoints}`, (r.stderr || r.stdout).trim().split("\n").pop());
}

/**
 * In a run that joins through the API alone, the --initial-cluster of this host's etcd: the one
 * its manifest or unit already names (the member started with it), else the members etcd holds
 * now, this host's learner among them (the cluster file the cluster stores need not list members
 * that joined from their own machines). undefined in other runs, or before the member is added.
 */
export async function joiningEtcdFlags(host: Host, ctx: RunContext): Promise<Flags | undefined> {
  if (!ctx.joinTo) return undefined;
  const file = ctx.cluster.spec.controlPlane.mode === "systemd" ? unitPath("etcd") : manifestPath("etcd");
  const text = (await host.transport.readFile(file))?.toString("utf8");
  let initial = text ? initialClusterOf(text)?.cluster : undefined;
  if (!initial) {
    const members = await listMembers(ctx, host);
    if (!memberOf(members, host)) return undefined;
    initial = members.map((m) => `${m.name || host.name}=${m.peerURLs[0]}`).join(",");
  }
  return new Map([
    ["initial-cluster", initial],
    ["initial-cluster-state", "existing"],
  ]);
}

/** etcd refuses a membership change for a few seconds after a member (re)joined: these pass. */
export const TRANSIENT_RECONFIG = /unhealthy cluster|too many learner|not in sync|timed out/i;

/** A membership change (member remove, promote) tried again while etcd calls it transient, within `timeoutMs`. */
export async function reconfigure(ctx: RunContext, args: string, exclude: Host | undefined, timeoutMs = 60_000): Promise<{ host: Host; stdout: string }> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await onEtcdMember(ctx, args, exclude);
    } catch (e) {
      if (!TRANSIENT_RECONFIG.test((e as HostError).details ?? "") || Date.now() > deadline) throw e;
      await sleep(1000);
    }
  }
}

export async function listMembers(ctx: RunContext, exclude?: Host): Promise<EtcdMember[]> {
  return parseMemberList((await onEtcdMember(ctx, "member list -w simple", exclude)).stdout);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Task name and phase of a member add or promote (external etcd hosts have their own). */
interface MemberTaskNames {
  name?: string;
  phase?: string;
}

/** Adds the joining control plane (or etcd host) as a learner (once: a re-run finds it by its peer URL). */
export function etcdMemberAddTask(opts: { hosts: (ctx: RunContext) => Host[]; after: string[] } & MemberTaskNames): Task {
  const name = opts.name ?? ETCD_MEMBER_ADD_TASK;
  return {
    name,
    phase: opts.phase ?? "control-plane-join",
    description: "add this host to etcd as a learner (one at a time, in file order)",
    hosts: opts.hosts,
    after: opts.after,
    perHost: true,
    // One member joins at a time, in file order: each one's --initial-cluster is the members before it.
    serial: true,
    async check(host, ctx): Promise<CheckResult> {
      const members = await listMembers(ctx, host);
      const me = memberOf(members, host);
      if (me) return { needed: false, reason: `etcd member ${me.id} (${me.learner ? "learner" : "voting"}, ${me.started ? "started" : "not started yet"})` };
      const clash = members.find((m) => m.name === host.name);
      if (clash) throw new HostError(host.name, name, `etcd has a member named ${host.name} with peer URL ${clash.peerURLs.join(",")}, not ${peerURL(host)}; remove it first (etcdctl member remove ${clash.id})`);
      const stale = (await hasLocalData(host)) ? `; first remove ${ETCD_DATA_DIR}/member (data of a member etcd no longer has)` : "";
      return { needed: true, reason: `add ${host.name} (${peerURL(host)}) to etcd's ${members.length} member(s) as a learner${stale}` };
    },
    async apply(host, ctx) {
      // The host is no member, so etcd data on it belongs to a member that was removed (a join
      // undone halfway, a member removed by hand): a new member started on it would be refused
      // by the cluster ("member removed") and never start. It goes before the new member is added.
      const stale = !memberOf(await listMembers(ctx, host), host) && (await hasLocalData(host));
      if (stale) await removeLocalLearner(host);
      // etcd admits one learner at a time, and refuses a change ("unhealthy cluster") until every
      // member has been connected for a few seconds: wait for both, within a bound.
      const deadline = Date.now() + LEARNER_WAIT_MS;
      for (;;) {
        const members = await listMembers(ctx, host);
        if (memberOf(members, host)) return { detail: "already a member" };
        const other = members.find((m) => m.learner);
        let why: string;
        if (other) why = `etcd member ${other.name || other.id} is still a learner (etcd admits one at a time)`;
        else {
          try {
            const r = await onEtcdMember(ctx, `member add ${shq(host.name)} --peer-urls=${peerURL(host)} --learner`, host);
            const id = /Member\s+([0-9a-f]+)\s+added/.exec(r.stdout)?.[1];
            return { detail: `${stale ? "stale etcd data removed; " : ""}added learner${id ? ` ${id}` : ""} through ${r.host.name}` };
          } catch (e) {
            const details = (e as HostError).details ?? "";
            if (!TRANSIENT_RECONFIG.test(details)) throw e;
            why = details.split("\n").pop() ?? "etcd refused the change";
          }
        }
        if (Date.now() > deadline) throw new HostError(host.name, name, `could not add the etcd member within ${LEARNER_WAIT_MS / 1000} s: ${why}`);
        await sleep(1000);
      }
    },
  };
}

/** Whether the host holds etcd data (a member directory). */
async function hasLocalData(host: Host): Promise<boolean> {
  const r = await host.transport.exec(`test -d ${shq(ETCD_DATA_DIR)}/member && echo data || true`, { sudo: true });
  return r.stdout.includes("data");
}

/** Stops the local etcd and removes its data: what a member etcd no longer has (or never promoted) left on its host. */
async function removeLocalLearner(host: Host): Promise<void> {
  const unit = unitPath("etcd");
  await host.transport.exec(
    [
      `rm -f ${shq(manifestPath("etcd"))}`,
      `if [ -e ${shq(unit)} ]; then systemctl disable --now etcd >/dev/null 2>&1 || true; rm -f ${shq(unit)}; systemctl daemon-reload; fi`,
      // The kubelet stops the static pod within a few seconds of its manifest going away.
      "for i in $(seq 1 30); do pgrep -x etcd >/dev/null || break; sleep 1; done",
      `rm -rf ${shq(ETCD_DATA_DIR)}/member`,
    ].join("\n"),
    { sudo: true, check: false, timeoutMs: 60_000 },
  );
}

/** Waits until the learner on this host caught up, then promotes it to a voting member. */
export function etcdPromoteTask(opts: { hosts: (ctx: RunContext) => Host[]; after: string[] } & MemberTaskNames): Task {
  const name = opts.name ?? ETCD_MEMBER_PROMOTE_TASK;
  return {
    name,
    phase: opts.phase ?? "control-plane-join",
    description: "promote this host's etcd learner to a voting member once it is in sync",
    waitsFor: "the etcd learner catching up with the leader",
    hosts: opts.hosts,
    after: opts.after,
    perHost: true,
    async check(host, ctx): Promise<CheckResult> {
      const me = memberOf(await listMembers(ctx, host), host);
      if (!me) return { needed: true, reason: `not an etcd member yet` };
      if (!me.learner && me.started) return { needed: false, reason: `voting etcd member ${me.id}` };
      return { needed: true, reason: me.learner ? `promote learner ${me.id} once in sync` : `wait for member ${me.id} to start` };
    },
    async apply(host, ctx) {
      const t0 = Date.now();
      let last = "";
      while (Date.now() - t0 < PROMOTE_TIMEOUT_MS) {
        const me = memberOf(await listMembers(ctx, host), host);
        if (!me) throw new HostError(host.name, name, "this host is not an etcd member (was it removed meanwhile?)");
        if (!me.learner) {
          if (me.started) return { detail: `voting member ${me.id}` };
        } else if (me.started) {
          // Refused ("not in sync with leader") until the learner has caught up: try again.
          try {
            await onEtcdMember(ctx, `member promote ${me.id}`, host);
            return { detail: `promoted ${me.id} to a voting member after ${((Date.now() - t0) / 1000).toFixed(1)} s` };
          } catch (e) {
            last = ((e as HostError).details ?? (e as Error).message).split("\n").pop() ?? "";
          }
        } else {
          last = "the learner has not started yet";
        }
        await sleep(500);
      }
      throw new HostError(host.name, name, `the etcd learner was not promoted within ${PROMOTE_TIMEOUT_MS / 1000} s (${last})`);
    },
    async cleanup(host, ctx) {
      // Only a learner is removed: a voting member is part of the quorum and stays.
      const me = memberOf(await listMembers(ctx, host).catch(() => []), host);
      if (me && !me.learner) return;
      if (me) await reconfigure(ctx, `member remove ${me.id}`, host);
      await removeLocalLearner(host);
      ctx.log("warn", `undone: ${me ? `learner ${me.id} removed from etcd, ` : ""}the local etcd stopped and its data removed; a re-run joins again`, host, name);
    },
  };
}
