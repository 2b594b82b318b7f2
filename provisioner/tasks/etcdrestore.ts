// Phase "etcd-restore": stacked etcd rebuilt from a snapshot, etcd's documented disaster recovery in
// kubeprov's terms. Every control plane stops etcd and kube-apiserver; the first control plane gets
// a fresh data directory from the snapshot holding a one-member cluster (its own name and peer URL,
// exactly what its etcd flags say: it is the member that starts the cluster); every other control
// plane keeps its old data aside and starts empty. The cluster plan (plan/restore.ts) then runs as
// `apply` does: it starts etcd and the API server on the first control plane, and joins the others
// the way it always joins them (learner added, local etcd started, promoted), so no second join path
// exists.
// Old data directories stay on each host as /var/lib/etcd.before-restore-STAMP (root-only).
import { ETCD_DATA_DIR, ETCD_SNAPSHOT_DIR, MANIFESTS_DIR, BIN_DIR } from "../constants.js";
import { HostError } from "../errors.js";
import type { CheckResult, Host, Task } from "../engine/task.js";
import { controlPlanes, firstControlPlane, joiningControlPlanes } from "../plan/topology.js";
import { renderTemplate } from "../render.js";
import { shq } from "../transport/transport.js";
import { UNIT_DIR } from "./controlplane.js";
import { peerURL } from "./etcdmember.js";

export const RESTORE_PHASE = "etcd-restore";
export const RESTORE_STOP_TASK = "etcd-restore/stop";
export const RESTORE_DATA_TASK = "etcd-restore/restore";
export const RESTORE_SET_ASIDE_TASK = "etcd-restore/set-aside";
/**
 * Added to the snapshot's revision on restore (and marked compacted): larger than any number of
 * writes the cluster can have made after the snapshot, so every watch re-lists instead of
 * resuming at a revision that now means something else.
 */
export const RESTORE_BUMP_REVISION = 1_000_000_000;
/** How long stopping etcd and kube-apiserver may take (the kubelet notices a removed manifest within seconds). */
export const RESTORE_STOP_WAIT_S = 150;
/**
 * After this long the processes still running get SIGTERM: longer than the kubelet's own grace
 * period for a pod (30 s), for a kubelet slow on a loaded machine or just after a node restart.
 */
export const RESTORE_STOP_GRACE_S = 45;

export interface RestoreInput {
  /** The snapshot's bytes (already checked locally). Never logged. */
  snapshot: Buffer;
  /** Names this restore's kept-aside directories: /var/lib/etcd.before-restore-STAMP. */
  stamp: string;
  /** For messages: what the snapshot holds. */
  describe: string;
}

/** The directory a restore keeps a control plane's old etcd data in. */
export const keptDataDir = (stamp: string) => `${ETCD_DATA_DIR}.before-restore-${stamp}`;
/** The root-only directory the static pod manifests of etcd and kube-apiserver move to while stopped. */
export const keptManifestsDir = (stamp: string) => `${MANIFESTS_DIR}.before-restore-${stamp}`;

/** A restore's stamp from a time: 20261204T134500Z. Pure. */
export function restoreStamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

/** The script that stops etcd and kube-apiserver on a control plane. Pure. */
export function restoreStopScript(host: Host, stamp: string): string {
  return renderTemplate("etcd/restore-stop.sh", {
    manifestsDir: MANIFESTS_DIR,
    asideDir: keptManifestsDir(stamp),
    unitDir: UNIT_DIR,
    nodeName: host.name,
    waitSeconds: RESTORE_STOP_WAIT_S,
    graceSeconds: RESTORE_STOP_GRACE_S,
  });
}

/** The script that rebuilds the first control plane's data directory from the uploaded snapshot. Pure. */
export function restoreDataScript(host: Host, snapshot: string, stamp: string): string {
  return renderTemplate("etcd/restore-data.sh", {
    snapshot,
    dataDir: ETCD_DATA_DIR,
    stamp,
    etcdutl: `${BIN_DIR}/etcdutl`,
    name: host.name,
    // The same one-member cluster the first control plane's --initial-cluster names.
    initialCluster: `${host.name}=${peerURL(host)}`,
    peerURL: peerURL(host),
    bumpRevision: RESTORE_BUMP_REVISION,
  });
}

export function restoreSetAsideScript(stamp: string): string {
  return renderTemplate("etcd/restore-set-aside.sh", { dataDir: ETCD_DATA_DIR, stamp });
}

/** The three restore tasks; `after` are the tasks they wait for (the binaries, etcdutl included). */
export function restoreTasks(input: RestoreInput, after: string[]): Task[] {
  const stop: Task = {
    name: RESTORE_STOP_TASK,
    phase: RESTORE_PHASE,
    description: "stop etcd and kube-apiserver on every control plane (nothing writes while etcd is replaced)",
    hosts: controlPlanes,
    after,
    async check(host): Promise<CheckResult> {
      const r = await host.transport.exec(
        `for c in etcd kube-apiserver; do if pgrep -x "$c" >/dev/null || [ -e ${shq(MANIFESTS_DIR)}/"$c".yaml ]; then echo "$c"; fi; done`,
        { sudo: true },
      );
      const running = r.stdout.split("\n").filter(Boolean);
      return running.length ? { needed: true, reason: `stop ${running.join(", ")}` } : { needed: false, reason: "etcd and kube-apiserver are not running" };
    },
    async apply(host) {
      const r = await host.transport.exec(restoreStopScript(host, input.stamp), { sudo: true, timeoutMs: (RESTORE_STOP_WAIT_S + 30) * 1000 });
      return { detail: ["etcd and kube-apiserver stopped", r.stdout.trim()].filter(Boolean).join("; ") };
    },
  };
  const restore: Task = {
    name: RESTORE_DATA_TASK,
    phase: RESTORE_PHASE,
    description: "rebuild the first control plane's etcd data from the snapshot (a one-member cluster); keep the old data aside",
    hosts: (ctx) => [firstControlPlane(ctx)],
    after: [RESTORE_STOP_TASK],
    async check(host): Promise<CheckResult> {
      return { needed: true, reason: `restore ${input.describe} into ${ETCD_DATA_DIR} as the one-member cluster ${host.name}=${peerURL(host)}` };
    },
    async apply(host) {
      const have = await host.transport.exec(`test -x ${shq(`${BIN_DIR}/etcdutl`)}`, { sudo: true, check: false });
      if (have.code !== 0) throw new HostError(host.name, RESTORE_DATA_TASK, `${BIN_DIR}/etcdutl is missing: the artifact source has no etcdutl (rebuild the bundle with scripts/build-bundle.sh)`);
      const remote = `${ETCD_SNAPSHOT_DIR}/restore-${input.stamp}.db`;
      await host.transport.exec(`mkdir -p ${shq(ETCD_SNAPSHOT_DIR)} && chmod 0700 ${shq(ETCD_SNAPSHOT_DIR)}`, { sudo: true });
      try {
        await host.transport.writeFile(remote, input.snapshot, { mode: 0o600 });
        await host.transport.exec(restoreDataScript(host, remote, input.stamp), { sudo: true, timeoutMs: 600_000 });
      } finally {
        await host.transport.exec(`rm -f ${shq(remote)}`, { sudo: true, check: false });
      }
      return { detail: `${ETCD_DATA_DIR} restored; the old data is kept in ${keptDataDir(input.stamp)}` };
    },
  };
  const setAside: Task = {
    name: RESTORE_SET_ASIDE_TASK,
    phase: RESTORE_PHASE,
    description: "keep the other control planes' etcd data aside: they join the restored etcd again as new members",
    hosts: joiningControlPlanes,
    after: [RESTORE_STOP_TASK],
    async check(host): Promise<CheckResult> {
      const r = await host.transport.exec(`[ -n "$(ls -A ${shq(ETCD_DATA_DIR)} 2>/dev/null)" ] && echo data || true`, { sudo: true });
      return r.stdout.includes("data") ? { needed: true, reason: `move ${ETCD_DATA_DIR} to ${keptDataDir(input.stamp)}` } : { needed: false, reason: `${ETCD_DATA_DIR} holds no etcd data` };
    },
    async apply(host) {
      await host.transport.exec(restoreSetAsideScript(input.stamp), { sudo: true });
      return { detail: `the old data is kept in ${keptDataDir(input.stamp)}` };
    },
  };
  return [stop, restore, setAside];
}
