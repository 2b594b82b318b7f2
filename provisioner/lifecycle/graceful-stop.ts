// What `kubeprov stop` does on the control planes before their machines stop, so that the next
// start does not wait out leader-election leases.
//
// kube-scheduler and kube-controller-manager run leader election with a new identity in every
// process (host name + "_" + a random UUID). A candidate that finds the lease held by another
// identity waits a full lease duration (15 s by default) from the moment it first saw the record,
// however old its renewTime is (client-go measures with its own clock, not the holder's). So after
// a plain machine stop (every process killed at once, API server included), a restarted control
// plane schedules no pod and updates no endpoints for about 15 s after it comes up, and a new pod
// resolves names only after both leases changed hands.
//
// A lease whose holder is empty is taken at once. So, while the API server and etcd still run:
//  1. the kubelet is stopped (it would start the components again), then kube-scheduler and
//     kube-controller-manager get SIGTERM with a grace period (templates/lifecycle/stop-leaders.sh):
//     kube-scheduler releases its lease as it exits (ReleaseOnCancel);
//  2. kube-controller-manager releases its lease only behind an alpha feature gate
//     (ControllerManagerReleaseLeaderElectionLockOnExit, off by default in v1.36 and v1.37), so
//     kubeprov writes the same release record client-go writes (empty holder, lease duration 1 s)
//     for every lease still held by a process that step 1 stopped. That is safe because the holder
//     is known to be gone (its host name is one of the stopped nodes' and its process was stopped),
//     and the write carries the resourceVersion read, so a lease another candidate took meanwhile
//     is left alone (409).
// Everything here is best effort and bounded in time: a cluster that is broken must still stop.
import { createRunContext } from "../engine/context.js";
import { MemoryReporter } from "../events.js";
import type { Host } from "../engine/task.js";
import type { Cluster } from "../spec/schema.js";
import { closeHosts, connectHostsSettled } from "../engine/hosts.js";
import { ADMIN_CONF, apiClient, closeApiClients, type KubeApi } from "../bootstrap/api.js";
import { shq } from "../transport/transport.js";
import { renderTemplate } from "../render.js";
import { BIN_DIR } from "../constants.js";

/** The components that hold a leader-election lease named after them in kube-system. */
export const LEADER_COMPONENTS = ["kube-scheduler", "kube-controller-manager"] as const;
/** SIGTERM to SIGKILL: kube-scheduler's release is one API write (bounded by its renew deadline, 10 s). */
export const LEADER_STOP_GRACE_S = 10;
/** The whole script on a host: the kubelet's stop, the grace period, and slack for a loaded machine. */
const SCRIPT_TIMEOUT_MS = (LEADER_STOP_GRACE_S + 20) * 1000;
/** The lease release (two reads, at most two writes): an API server that hangs must not hold the stop up. */
const RELEASE_TIMEOUT_MS = 20_000;

/** The host-side script (templates/lifecycle/stop-leaders.sh). Pure. */
export function stopLeadersScript(mode: "static-pods" | "systemd", graceS = LEADER_STOP_GRACE_S, crictl = `${BIN_DIR}/crictl`, adminConf = ADMIN_CONF): string {
  return renderTemplate("lifecycle/stop-leaders.sh", { mode, graceSeconds: graceS, components: LEADER_COMPONENTS.join(" "), crictl, adminConf: shq(adminConf) });
}

type LeaseObject = {
  metadata: { name: string; resourceVersion?: string };
  spec?: { holderIdentity?: string; leaseTransitions?: number };
};

/** Lease time in the API's MicroTime form (RFC 3339, six fraction digits). */
export function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

/**
 * The merge patch that releases a lease as client-go's leader elector does on a graceful exit: no
 * holder, lease duration 1 s, renew and acquire time now, transitions kept. The resourceVersion
 * makes it conditional on the lease being unchanged since it was read. Pure.
 */
export function leaseReleasePatch(lease: LeaseObject, now: Date): object {
  const t = microTime(now);
  return {
    metadata: { resourceVersion: lease.metadata.resourceVersion },
    spec: { holderIdentity: "", leaseDurationSeconds: 1, renewTime: t, acquireTime: t },
  };
}

/** Does `holder` name a process of one of these hosts? Identities are "<hostname>_<uuid>". Pure. */
export function heldByOneOf(holder: string | undefined, hostnames: string[]): boolean {
  return !!holder && hostnames.some((h) => holder.startsWith(`${h}_`));
}

/** Releases the leader leases still held by processes of `hostnames`; returns what it released. */
export async function releaseLeases(api: KubeApi, hostnames: string[], now = () => new Date()): Promise<string[]> {
  const released: string[] = [];
  for (const name of LEADER_COMPONENTS) {
    const path = `/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/${name}`;
    const lease = await api.get<LeaseObject>(path);
    if (!lease || !heldByOneOf(lease.spec?.holderIdentity, hostnames)) continue;
    const r = await api.mergePatch(path, leaseReleasePatch(lease, now()));
    if (r.status >= 200 && r.status < 300) released.push(name);
  }
  return released;
}

export interface GracefulStopResult {
  /** Control planes the script ran on. */
  stopped: string[];
  /** Leases kubeprov released for stopped holders (kube-scheduler normally released its own). */
  released: string[];
  /** What did not work (the machines are stopped anyway). */
  warnings: string[];
}

/**
 * Stops the lease-holding components on the running control planes among `nodes` (all hosts when
 * undefined), then releases the leases their processes still hold. Never throws.
 */
export async function stopLeaders(cluster: Cluster, source: string, nodes?: string[]): Promise<GracefulStopResult> {
  const out: GracefulStopResult = { stopped: [], released: [], warnings: [] };
  const targets = cluster.spec.hosts.filter((h) => h.roles.includes("control-plane") && (!nodes || nodes.includes(h.name)));
  if (!targets.length) return out;
  // Only the targets are connected to (machines already stopped are skipped by the caller); the
  // API goes through the first reachable control plane, which may be one of them: its API server
  // still runs until the machine stops.
  const conns = await connectHostsSettled({ ...cluster, spec: { ...cluster.spec, hosts: targets } }, { acceptNewHostKeys: false });
  const hosts: Host[] = conns.flatMap((c) => (c.host ? [c.host] : []));
  for (const c of conns) if (c.error) out.warnings.push(`${c.spec.name}: not reached (${c.error.message.split("\n")[0]})`);
  const hostnames: string[] = [];
  await Promise.all(
    hosts.map(async (h) => {
      try {
        const r = await h.transport.exec(stopLeadersScript(cluster.spec.controlPlane.mode), { sudo: true, timeoutMs: SCRIPT_TIMEOUT_MS, check: false });
        const hn = /^hostname=(\S+)$/m.exec(r.stdout)?.[1];
        if (hn) hostnames.push(hn);
        if (r.code === 0) out.stopped.push(h.name);
        else out.warnings.push(`${h.name}: stopping the kubelet and the leader components exited ${r.code}: ${r.stderr.trim().split("\n").pop() ?? ""}`);
      } catch (e) {
        out.warnings.push(`${h.name}: stopping the kubelet and the leader components: ${(e as Error).message.split("\n")[0]}`);
      }
    }),
  );
  if (hostnames.length) {
    const ctx = createRunContext({ cluster: { ...cluster, spec: { ...cluster.spec, hosts: targets } }, source, hosts, reporter: new MemoryReporter() });
    try {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${RELEASE_TIMEOUT_MS / 1000} s`)), RELEASE_TIMEOUT_MS);
      });
      try {
        out.released = await Promise.race([apiClient(ctx).then((api) => releaseLeases(api, hostnames)), timeout]);
      } finally {
        clearTimeout(timer);
      }
    } catch (e) {
      out.warnings.push(`releasing the leader leases: ${(e as Error).message.split("\n")[0]}`);
    } finally {
      await closeApiClients(ctx);
    }
  }
  await closeHosts(hosts);
  return out;
}
