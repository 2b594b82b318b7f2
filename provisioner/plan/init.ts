// The plan of `kubeprov init` (and of `up`): kubeadm's phases in order, on the first control plane.
//   preflight → prepare (runtime, binaries, images) → certs → kubeconfig → kubelet-start → etcd →
//   control-plane → wait-control-plane → bootstrap (H8) → addons (H8)
// Order comes from `after` (the runner runs independent tasks at once): images import while
// certificates are made; etcd and the control plane wait for certs, kubeconfigs and images.
import { RuntimeFailure } from "../errors.js";
import type { Host, RunContext, Task } from "../engine/task.js";
import { imagesTask, IMAGES_TASK, ADDON_IMAGES_TASK } from "../tasks/images.js";
import { kubeletStartTask } from "../tasks/kubelet.js";
import { controlPlaneTasks, etcdTasks } from "../tasks/controlplane.js";
import { waitControlPlaneTask } from "../tasks/wait.js";
import { preflightTasks } from "../tasks/preflight.js";
import { prepareTasks } from "../tasks/prepare.js";
import { certsTasks } from "../tasks/certs.js";
import { kubeconfigTasks } from "../tasks/kubeconfig.js";
import { bootstrapTasks, CLUSTER_ADMINS_TASK } from "../tasks/bootstrap.js";
import { addonsTasks } from "../tasks/addons.js";

/** What each phase does (for `init phase --help`); phases come from the tasks themselves. */
export const PHASE_DESCRIPTIONS: Record<string, string> = {
  preflight: "check the host can run Kubernetes (CPU, memory, ports, swap, cgroups, runtime)",
  prepare: "container runtime, binaries, kubelet prerequisites and images",
  certs: "certificate authorities and certificates under /etc/kubernetes/pki",
  kubeconfig: "admin, super-admin, kubelet, controller-manager and scheduler kubeconfigs",
  "kubelet-start": "kubelet configuration and flags; kubelet running",
  etcd: "local (stacked) etcd member",
  "control-plane": "kube-apiserver, kube-controller-manager, kube-scheduler",
  "wait-control-plane": "wait until the API server is ready, diagnose what is not",
  "bootstrap-rbac": "RBAC for cluster admins and for bootstrapping nodes",
  "upload-config": "the effective cluster file in a ConfigMap in kube-system",
  "mark-control-plane": "control-plane label (and taint unless it is also a worker)",
  "bootstrap-token": "a bootstrap token for joining nodes",
  "cluster-info": "kube-public/cluster-info, signed for each token",
  addons: "CNI configuration, kube-proxy, CoreDNS",
};

/** init's phases in order, as its tasks declare them. */
export function initPhases(): Array<{ name: string; description: string }> {
  return [...new Set(initTasks().map((t) => t.phase))].map((name) => ({ name, description: PHASE_DESCRIPTIONS[name] ?? name }));
}


/** The first control plane (in file order): where init runs. */
export function firstControlPlane(ctx: RunContext): Host {
  const h = ctx.hosts.find((x) => x.roles.includes("control-plane"));
  if (!h) throw new RuntimeFailure(`cluster ${ctx.cluster.metadata.name} has no host with role control-plane`);
  return h;
}

const onFirstControlPlane = (ctx: RunContext): Host[] => [firstControlPlane(ctx)];

/** The same task with more dependencies and restricted hosts (keeps the task's prototype). */
function adapt(task: Task, extraAfter: string[], restrict: (ctx: RunContext) => Host[]): Task {
  const copy = Object.assign(Object.create(Object.getPrototypeOf(task)) as Task, task);
  const own = new Set(task.after ?? []);
  copy.after = [...own, ...extraAfter.filter((n) => n !== task.name && !own.has(n))];
  copy.hosts = (ctx) => {
    const allowed = new Set(restrict(ctx).map((h) => h.name));
    return task.hosts(ctx).filter((h) => allowed.has(h.name));
  };
  return copy;
}

const names = (tasks: Task[]) => tasks.map((t) => t.name);

/** init's tasks, in order, each restricted to the first control plane. */
export function initTasks(): Task[] {
  const preflight = preflightTasks();
  const prepareRuntime = prepareTasks();
  const certs = certsTasks();
  const kubeconfigs = kubeconfigTasks();
  const bootstrap = bootstrapTasks();
  const addons = addonsTasks();

  // What the kubelet and the control plane need first; the addons' images import meanwhile.
  const images = imagesTask({ after: names(prepareRuntime), set: "control-plane" });
  const addonImages = imagesTask({ after: [images.name], set: "addons", name: ADDON_IMAGES_TASK });
  const prepare = [...prepareRuntime, images];
  const kubelet = kubeletStartTask({ hosts: onFirstControlPlane });
  const etcd = etcdTasks({ hosts: onFirstControlPlane, after: [] });
  const controlPlane = controlPlaneTasks({ hosts: onFirstControlPlane, after: [] });
  const wait = waitControlPlaneTask({ hosts: onFirstControlPlane, after: [] });

  const pre = names(preflight);
  const groups: Array<[Task[], string[]]> = [
    [preflight, []],
    [prepare, pre],
    [certs, pre],
    [kubeconfigs, [...pre, ...names(certs)]],
    [[kubelet], [...names(prepare), ...names(certs), ...names(kubeconfigs)]],
    [etcd, [...names(prepare), ...names(certs)]],
    [controlPlane, [...names(prepare), ...names(certs), ...names(kubeconfigs)]],
    [[wait], [kubelet.name, ...names(etcd), ...names(controlPlane)]],
    [bootstrap, [wait.name]],
    [[addonImages], []],
    // Add-ons need the API and the cluster-admins binding (admin.conf), not the other bootstrap objects.
    [addons, [wait.name, CLUSTER_ADMINS_TASK, addonImages.name]],
  ];
  return groups.flatMap(([tasks, after]) => tasks.map((t) => adapt(t, after, onFirstControlPlane)));
}

export { IMAGES_TASK };
