// The cluster lock: one lock file on every host, so two kubeprov runs that change the same cluster
// never interleave. Created only if absent (noclobber: O_EXCL), holding an id, the owner, the pid
// and a timestamp; touched every LOCK_TOUCH_MS while held; older than LOCK_STALE_MS (by the
// host's own clock) it is stale and may be taken over: the stale file is renamed aside (only one
// run can rename it), checked to be the one judged stale, and a new one created exclusively. A lock
// held by a process of this machine that no longer exists (killed outright) is taken over at once.
// Taken on all hosts or on none; release removes only our own lock.
import { randomUUID } from "node:crypto";
import { hostname, userInfo } from "node:os";
import { HostError, RuntimeFailure } from "../errors.js";
import { LOCK_FILE, LOCK_STALE_MS, LOCK_TOUCH_MS } from "../constants.js";
import type { Host } from "./task.js";
import { renderTemplate } from "../render.js";
import { shq } from "../transport/transport.js";

export interface LockOptions {
  /** Lock file on each host (default LOCK_FILE). */
  path?: string | ((host: Host) => string);
  staleMs?: number;
  touchMs?: number;
  /** Called when a touch finds the lock is no longer ours (taken over after we stalled). */
  onLost?: (host: Host) => void;
}

export interface LockHolder {
  id?: string;
  owner?: string;
  pid?: string;
  machine?: string;
  since?: string;
}

export interface Lock {
  release(): Promise<void>;
  /** Hosts where a stale lock was taken over, with who held it. */
  takenOver: Array<{ host: string; previous: LockHolder }>;
}

/** Parse the key=value lines of a lock file. */
export function parseLockFile(text: string): LockHolder {
  const h: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const i = line.indexOf("=");
    if (i > 0) h[line.slice(0, i)] = line.slice(i + 1);
  }
  return { id: h.id, owner: h.owner, pid: h.pid, machine: h.machine, since: h.since };
}

export function describeHolder(h: LockHolder): string {
  const who = h.owner ?? "an unknown kubeprov run";
  const parts = [h.pid ? `pid ${h.pid}` : "", h.machine ? `on ${h.machine}` : "", h.since ? `since ${h.since}` : ""].filter(Boolean);
  return parts.length ? `${who} (${parts.join(" ")})` : who;
}

/**
 * The acquire script (templates/lock/acquire.sh); the new lock file's content goes on stdin.
 * `deadId`: the id of a lock whose holder is gone, taken over at once (no id matches "id=").
 */
export function acquireScript(path: string, staleS: number, deadId = ""): string {
  return renderTemplate("lock/acquire.sh", { path: shq(path), staleSeconds: Math.max(1, Math.floor(staleS)), deadIdLine: shq(`id=${deadId}`) });
}

/**
 * A holder that is a process of this machine which no longer exists (a run killed outright, e.g.
 * SIGKILL or a lost terminal): its lock will never be renewed nor released, so waiting for it to
 * turn stale would only delay the next run. A holder on another machine is never judged this way.
 */
export function holderIsGone(h: LockHolder, machine = hostname()): boolean {
  const pid = Number(h.pid);
  if (!h.id || h.machine !== machine || !Number.isInteger(pid) || pid <= 0 || pid === process.pid) return false;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "ESRCH";
  }
}

/** Removes the lock file while it is ours (templates/lock/release.sh). */
export function releaseScript(path: string, id: string): string {
  return renderTemplate("lock/release.sh", { path: shq(path), idLine: shq(`id=${id}`) });
}

/** Renews the lock file's time while it is ours, else exits non-zero (templates/lock/touch.sh). */
export function touchScript(path: string, id: string): string {
  return renderTemplate("lock/touch.sh", { path: shq(path), idLine: shq(`id=${id}`) });
}

type Outcome = { host: Host; kind: "acquired" } | { host: Host; kind: "taken-over"; previous: LockHolder } | { host: Host; kind: "held"; holder: LockHolder; ageS: number } | { host: Host; kind: "error"; error: Error };

export async function acquireLock(hosts: Host[], owner: string, opts: LockOptions = {}): Promise<Lock> {
  const staleMs = opts.staleMs ?? LOCK_STALE_MS;
  const touchMs = opts.touchMs ?? LOCK_TOUCH_MS;
  const pathOf = (h: Host) => (typeof opts.path === "function" ? opts.path(h) : (opts.path ?? LOCK_FILE));
  const id = randomUUID();
  const content = [
    "kubeprov-lock",
    `id=${id}`,
    `owner=${owner.replace(/\n/g, " ")}`,
    `pid=${process.pid}`,
    `machine=${hostname()}`,
    `user=${userInfo().username}`,
    `since=${new Date().toISOString()}`,
  ].join("\n");
  const staleS = Math.max(1, Math.round(staleMs / 1000));

  const tryOnce = async (host: Host, deadId?: string): Promise<Outcome> => {
      try {
        const r = await host.transport.exec(acquireScript(pathOf(host), staleS, deadId), { sudo: true, stdin: `${content}\n` });
        const [first, ...rest] = r.stdout.split("\n");
        const [kind, age] = first.trim().split(" ");
        if (kind === "acquired") return { host, kind: "acquired" };
        if (kind === "taken-over") return { host, kind: "taken-over", previous: parseLockFile(rest.join("\n")) };
        if (kind === "held") return { host, kind: "held", holder: parseLockFile(rest.join("\n")), ageS: Number(age) };
        return { host, kind: "error", error: new HostError(host.name, "lock", `unexpected answer from the lock script: ${first}`) };
      } catch (e) {
        return { host, kind: "error", error: e as Error };
      }
  };
  // A lock whose holder is gone is taken over at once (the script still checks it is that very lock).
  const tryHost = async (host: Host): Promise<Outcome> => {
    const o = await tryOnce(host);
    return o.kind === "held" && holderIsGone(o.holder) ? tryOnce(host, o.holder.id) : o;
  };
  // The first host (by name) is taken first, the rest in parallel: runs racing for the same hosts
  // are decided on that one host, so exactly one of them goes on.
  const ordered = [...hosts].sort((a, b) => a.name.localeCompare(b.name));
  const outcomes: Outcome[] = [];
  if (ordered.length) {
    const head = await tryHost(ordered[0]);
    outcomes.push(head);
    if (head.kind === "acquired" || head.kind === "taken-over") outcomes.push(...(await Promise.all(ordered.slice(1).map(tryHost))));
  }

  const taken = outcomes.filter((o) => o.kind === "acquired" || o.kind === "taken-over").map((o) => o.host);
  const release = async (list: Host[]) => {
    await Promise.all(list.map((h) => h.transport.exec(releaseScript(pathOf(h), id), { sudo: true, check: false }).catch(() => undefined)));
  };

  const held = outcomes.filter((o): o is Extract<Outcome, { kind: "held" }> => o.kind === "held");
  const failed = outcomes.filter((o): o is Extract<Outcome, { kind: "error" }> => o.kind === "error");
  if (held.length || failed.length) {
    await release(taken);
    if (held.length) {
      const first = held[0];
      const lines = held.map((o) => `${o.host.name}: ${pathOf(o.host)} held by ${describeHolder(o.holder)}, renewed ${o.ageS} s ago`);
      throw new HostError(
        first.host.name,
        "lock",
        `the cluster is locked by another kubeprov run: ${describeHolder(first.holder)} holds ${pathOf(first.host)}; nothing was changed. Wait for it to finish (a lock not renewed for ${staleS} s is stale and is then taken over)`,
        [...lines, ...failed.map((o) => `${o.host.name}: ${o.error.message}`)].join("\n"),
      );
    }
    throw new RuntimeFailure(
      `cannot take the cluster lock on ${failed.map((o) => o.host.name).join(", ")}; nothing was changed`,
      failed.map((o) => `${o.host.name}: ${o.error.message}`).join("\n"),
    );
  }

  const lostHosts = new Set<string>();
  const timer = setInterval(() => {
    for (const h of taken) {
      h.transport
        .exec(touchScript(pathOf(h), id), { sudo: true, check: false, timeoutMs: Math.max(touchMs, 5000) })
        .then((r) => {
          if (r.code !== 0 && !lostHosts.has(h.name)) {
            lostHosts.add(h.name);
            opts.onLost?.(h);
          }
        })
        .catch(() => undefined);
    }
  }, touchMs);
  timer.unref();

  let released = false;
  return {
    takenOver: outcomes.flatMap((o) => (o.kind === "taken-over" ? [{ host: o.host.name, previous: o.previous }] : [])),
    release: async () => {
      if (released) return;
      released = true;
      clearInterval(timer);
      await release(taken);
    },
  };
}
