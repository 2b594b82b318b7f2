// Taking an etcd snapshot on a control plane: etcdctl writes it into a root-only directory there
// (templates/etcd/snapshot-save.sh), kubeprov reads it back over the host's transport and removes
// the copy on the host whatever happened. The bytes are returned, never logged.
import { randomBytes } from "node:crypto";
import { ETCD_SNAPSHOT_DIR } from "../constants.js";
import { HostError } from "../errors.js";
import type { Host } from "../engine/task.js";
import { renderTemplate } from "../render.js";
import { etcdctlCommand } from "../tasks/etcdmember.js";
import { shq } from "../transport/transport.js";

/** How long etcdctl may stream a snapshot (a large database takes a while). */
export const SNAPSHOT_SAVE_TIMEOUT_S = 300;

/** The script that takes a snapshot into `file` on a control plane. Pure. */
export function snapshotSaveScript(file: string): string {
  // etcdctl reads the last --command-timeout given: the default of etcdctlCommand is too short here.
  return renderTemplate("etcd/snapshot-save.sh", { dir: ETCD_SNAPSHOT_DIR, file, etcdctl: etcdctlCommand(`--command-timeout=${SNAPSHOT_SAVE_TIMEOUT_S}s`) });
}

/** A snapshot of the etcd member on `host` (its local member answers; quorum is not needed). */
export async function takeSnapshot(host: Host): Promise<Buffer> {
  const file = `${ETCD_SNAPSHOT_DIR}/save-${randomBytes(6).toString("hex")}.db`;
  try {
    const r = await host.transport.exec(snapshotSaveScript(file), { sudo: true, check: false, timeoutMs: (SNAPSHOT_SAVE_TIMEOUT_S + 30) * 1000 });
    if (r.code !== 0) throw new HostError(host.name, undefined, "etcdctl snapshot save failed", (r.stderr || r.stdout).trim().split("\n").slice(-3).join("\n"));
    const data = await host.transport.readFile(file);
    if (!data) throw new HostError(host.name, undefined, `etcdctl snapshot save reported success but ${file} is missing`);
    return data;
  } finally {
    // etcdctl writes FILE.part first; neither stays on the host.
    await host.transport.exec(`rm -f ${shq(file)} ${shq(`${file}.part`)}`, { sudo: true, check: false }).catch(() => undefined);
  }
}
