// The plan of `kubeprov join`: workers listed in the cluster file join the cluster that `init` made
// on the first control plane (TLS bootstrap with a bootstrap token, as kubeadm join).
//   preflight → prepare (runtime, binaries, images) → bootstrap token (on the first control plane)
//   → join (CA + bootstrap kubeconfig) → kubelet-start → CNI configuration for the node's pod CIDR
// Joining more control planes is not implemented yet: the plan says so for those hosts.
import { RuntimeFailure } from "../errors.js";
import type { Host, RunContext, Task } from "../engine/task.js";
import { imagesTask } from "../tasks/images.js";
import { kubeletStartTask } from "../tasks/kubelet.js";
import { joinKubeconfigTask } from "../tasks/join.js";
import { preflightTasks } from "../tasks/preflight.js";
import { prepareTasks } from "../tasks/prepare.js";
import { bootstrapTokenTask } from "../tasks/bootstrap.js";
import { cniTask } from "../tasks/addons.js";
import { joinEndpoint } from "../bootstrap/joincmd.js";
import { firstControlPlane } from "./init.js";

/** Joining more control planes (stacked etcd member add, shared CAs) is not implemented yet. */
export const CONTROL_PLANE_JOIN = false;

/** Every host but the first control plane. */
export function joiningHosts(ctx: RunContext): Host[] {
  const first = firstControlPlane(ctx);
  return ctx.hosts.filter((h) => h.name !== first.name);
}

const names = (ts: Task[]) => ts.map((t) => t.name);

function adapt(task: Task, after: string[], hosts: (ctx: RunContext) => Host[]): Task {
  const copy = Object.assign(Object.create(Object.getPrototypeOf(task)) as Task, task);
  const own = new Set(task.after ?? []);
  copy.after = [...own, ...after.filter((n) => n !== task.name && !own.has(n))];
  copy.hosts = (ctx) => {
    const allowed = new Set(hosts(ctx).map((h) => h.name));
    return task.hosts(ctx).filter((h) => allowed.has(h.name));
  };
  return copy;
}

/** A task that fails for joining control planes (not implemented), before anything changes on them. */
function controlPlaneJoinGuard(): Task {
  return {
    name: "join/control-plane-unsupported",
    phase: "preflight",
    description: "joining more control planes is not implemented yet",
    hosts: (ctx) => joiningHosts(ctx).filter((h) => h.roles.includes("control-plane")),
    async check() {
      return { needed: true, reason: "joining a control plane is not implemented yet" };
    },
    async apply(host) {
      throw new RuntimeFailure(`${host.name}: joining another control plane is not implemented yet (only workers join)`);
    },
  };
}

export function joinTasks(): Task[] {
  const workers = (ctx: RunContext) => joiningHosts(ctx).filter((h) => !h.roles.includes("control-plane"));
  const guard = controlPlaneJoinGuard();
  const preflight = preflightTasks();
  const prepare = [...prepareTasks()];
  const images = imagesTask({ after: names(prepare) });
  const token = bootstrapTokenTask();
  const kubeconfig = joinKubeconfigTask({
    hosts: workers,
    after: [],
    server: (ctx) => `https://${joinEndpoint(ctx.cluster, firstControlPlane(ctx).nodeIP)}`,
    first: firstControlPlane,
  });
  const kubelet = kubeletStartTask({ hosts: workers, bootstrap: true });
  const cni = cniTask({ hosts: workers });
  const onFirst = (ctx: RunContext) => [firstControlPlane(ctx)];
  return [
    guard,
    ...preflight.map((t) => adapt(t, [], workers)),
    ...[...prepare, images].map((t) => adapt(t, names(preflight), workers)),
    adapt(token, [], onFirst),
    adapt(kubeconfig, [...names(prepare), images.name, token.name], workers),
    adapt(kubelet, [kubeconfig.name], workers),
    adapt(cni, [kubelet.name], workers),
  ];
}
