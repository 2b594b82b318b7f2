// The plan of `kubeprov etcd restore`: the cluster plan with the restore tasks (tasks/etcdrestore.ts)
// placed after the binaries are installed and before everything else.
import type { Task } from "../engine/task.js";
import { RESTORE_DATA_TASK, RESTORE_SET_ASIDE_TASK, restoreTasks, type RestoreInput } from "../tasks/etcdrestore.js";
import { PREPARE_BINARIES_TASK } from "../tasks/prepare.js";
import { clusterTasks } from "./cluster.js";

/** A task copied with more dependencies (keeps its prototype). */
function withAfter(task: Task, more: string[]): Task {
  const copy = Object.assign(Object.create(Object.getPrototypeOf(task)) as Task, task);
  copy.after = [...(task.after ?? []), ...more];
  return copy;
}

/**
 * The whole restore: the cluster plan (scope "all"), with the restore tasks after the binaries are
 * installed (etcdutl comes with them) and every task that does not lead to the binaries after the
 * restore. Preflight and the binaries run first, so a host that cannot be prepared stops the run
 * before anything was stopped.
 */
export function restorePlan(input: RestoreInput): Task[] {
  const plan = clusterTasks("all");
  const byName = new Map(plan.map((t) => [t.name, t]));
  const before = new Set<string>();
  const visit = (name: string) => {
    const t = byName.get(name);
    if (!t || before.has(name)) return;
    before.add(name);
    for (const n of t.after ?? []) visit(n);
  };
  visit(PREPARE_BINARIES_TASK);
  const restore = restoreTasks(input, [...before]);
  const done = [RESTORE_DATA_TASK, RESTORE_SET_ASIDE_TASK];
  return [
    ...plan.filter((t) => before.has(t.name)),
    ...restore,
    ...plan.filter((t) => !before.has(t.name)).map((t) => withAfter(t, done)),
  ];
}

