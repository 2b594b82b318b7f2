// THE plan of a cluster: one task graph for every topology, used by apply, up, init and join.
//   every host:          preflight → prepare (runtime, binaries, images; the controller manager's
//                        and scheduler's images while the kubelet starts, add-ons' images after)
//   every control plane: certs (first control plane first: it owns the CAs) → kubeconfigs → kubelet;
//                        haproxy + keepalived when spec.ha is on
//   first control plane: etcd → API server → its /readyz → controller manager, scheduler →
//                        wait-control-plane → (VIP answers) → bootstrap →
//                        upload-certs (with --upload-certs) → add-ons
//   join --certificate-key: download-certs (kubeadm-certs opened) before anything changes
//   other control planes, one at a time in file order: etcd learner added → local etcd →
//                        promoted → control plane → wait → mark-control-plane → CNI
//   workers, in parallel: bootstrap token → bootstrap kubeconfig → kubelet (TLS bootstrap) → CNI
//   external etcd (hosts with role etcd, before any control plane): preflight → binaries → etcd
//                        certs (first etcd host first) → etcd units → every member healthy; the
//                        control planes then run no etcd of their own (no data dir, no learners)
//   last, in "all" only: cluster-ready (a CoreDNS replica ready, kube-proxy ready on every node)
// Scopes: "init" is the first control plane's part (kubeadm init), "join" every other host's
// (kubeadm join), "all" both (apply, up). Dependencies on tasks outside the scope are dropped: the
// part they stand for already exists (the cluster is the source of truth).
import type { Host, RunContext, Task } from "../engine/task.js";
import { imagesTask, ADDON_IMAGES_TASK, CONTROLLER_IMAGES_TASK } from "../tasks/images.js";
import { kubeletStartTask } from "../tasks/kubelet.js";
import { componentTask, controlPlaneTasks, etcdTasks } from "../tasks/controlplane.js";
import { waitControlPlaneTask, WAIT_API_SERVER_TASK } from "../tasks/wait.js";
import { preflightTasks } from "../tasks/preflight.js";
import { prepareTasks } from "../tasks/prepare.js";
import { certsTasks } from "../tasks/certs.js";
import { kubeconfigTasks } from "../tasks/kubeconfig.js";
import { bootstrapTasks, bootstrapTokenTask, CLUSTER_ADMINS_TASK, markControlPlaneTask } from "../tasks/bootstrap.js";
import { addonsTasks, cniTask } from "../tasks/addons.js";
import { haTasks, HA_ENDPOINT_TASK } from "../tasks/ha.js";
import { etcdMemberAddTask, etcdPromoteTask } from "../tasks/etcdmember.js";
import { joinKubeconfigTask, joinServer } from "../tasks/join.js";
import { clusterCa } from "../tasks/certs.js";
import { cniImagesTask, cniManifestTask } from "../tasks/cnimanifest.js";
import { downloadCertsTask, uploadCertsTask } from "../tasks/uploadcerts.js";
import { clusterReadyTask } from "../tasks/cluster-ready.js";
import { externalEtcdHosts, firstControlPlane, hasExternalEtcd, joiningControlPlanes, workers } from "./topology.js";
import { ETCD_EXTERNAL_CERTS_TASK, ETCD_EXTERNAL_HEALTH_TASK, externalEtcdTasks } from "../tasks/externaletcd.js";
import { PREPARE_BINARIES_TASK, PREPARE_MARKER_TASK } from "../tasks/prepare.js";

export type PlanScope = "init" | "join" | "all";

type Select = (ctx: RunContext) => Host[];

/** The same task on other hosts (intersected with its own), after more tasks; keeps its prototype. */
function place(task: Task, hosts: Select, after: string[], opts: { perHost?: boolean } = {}): Task {
  const copy = Object.assign(Object.create(Object.getPrototypeOf(task)) as Task, task);
  const own = new Set(task.after ?? []);
  copy.after = [...own, ...after.filter((n) => n !== task.name && !own.has(n))];
  copy.hosts = (ctx) => {
    const chosen = hosts(ctx);
    // Nothing chosen: the task's own selection is not asked (it may name a host this run lacks).
    if (!chosen.length) return [];
    const allowed = new Set(chosen.map((h) => h.name));
    return task.hosts(ctx).filter((h) => allowed.has(h.name));
  };
  if (opts.perHost) copy.perHost = true;
  return copy;
}

const names = (tasks: Task[]) => tasks.map((t) => t.name);

/** Task names of the joining control planes' own steps. */
export const CP_JOIN = "control-plane-join";

export function clusterTasks(scope: PlanScope = "all"): Task[] {
  const inInit = scope !== "join";
  const inJoin = scope !== "init";
  const first: Select = (ctx) => (inInit ? [firstControlPlane(ctx)] : []);
  const joining: Select = (ctx) => (inJoin ? joiningControlPlanes(ctx) : []);
  const joiningWorkers: Select = (ctx) => (inJoin ? workers(ctx) : []);
  const inFileOrder = (...sets: Select[]): Select => (ctx) => {
    const chosen = new Set(sets.flatMap((s) => s(ctx)).map((h) => h.name));
    return ctx.hosts.filter((h) => chosen.has(h.name));
  };
  const cps = inFileOrder(first, joining);
  const everyone = inFileOrder(first, joining, joiningWorkers);
  // External etcd is made with the first control plane (init); stacked etcd only without it.
  const etcdHosts: Select = (ctx) => (inInit ? externalEtcdHosts(ctx) : []);
  const stacked = (sel: Select): Select => (ctx) => (hasExternalEtcd(ctx) ? [] : sel(ctx));
  const withEtcdHosts = inFileOrder(first, joining, joiningWorkers, etcdHosts);

  // ---- every host, every control plane ----
  const preflight = preflightTasks().map((t) => place(t, withEtcdHosts, []));
  // join --certificate-key: the shared CAs are read and opened before anything changes on a host,
  // so a wrong key leaves every host as it was.
  const downloadCerts = scope === "join" ? [downloadCertsTask({ after: names(preflight) })] : [];
  const pre = [...names(preflight), ...names(downloadCerts)];
  // etcd hosts get the cluster marker and their binaries (etcd, etcdctl, etcdutl); no runtime, no kubelet.
  const onEtcdHostsToo = new Set([PREPARE_MARKER_TASK, PREPARE_BINARIES_TASK]);
  const prepareRuntime = prepareTasks().map((t) => place(t, onEtcdHostsToo.has(t.name) ? withEtcdHosts : everyone, pre));
  const images = place(imagesTask({ after: names(prepareRuntime), set: "control-plane" }), everyone, pre);
  // The controller manager's and scheduler's images while the kubelet starts etcd and the API
  // server; their manifests wait for them (the kubelet would otherwise try to pull them).
  const controllerImages = place(imagesTask({ after: [images.name], set: "controllers", name: CONTROLLER_IMAGES_TASK }), cps, pre);
  const addonImages = place(imagesTask({ after: [controllerImages.name], set: "addons", name: ADDON_IMAGES_TASK }), everyone, pre);
  const prepare = [...prepareRuntime, images];
  // ---- external etcd (role etcd): its own cluster, before the control planes need it ----
  const etcdBinaries = prepareRuntime.filter((t) => onEtcdHostsToo.has(t.name));
  const externalEtcd = externalEtcdTasks({ hosts: etcdHosts, after: [...pre, ...names(etcdBinaries)] });

  const certs = certsTasks().map((t) => place(t, cps, [...pre, ETCD_EXTERNAL_CERTS_TASK]));
  const kubeconfigs = kubeconfigTasks().map((t) => place(t, cps, [...pre, ...names(certs)]));
  const kubelet = place(kubeletStartTask(), cps, [...names(prepare), ...names(certs), ...names(kubeconfigs)]);
  const [etcdDataDir, etcdLocal] = etcdTasks({ hosts: cps, after: [] });
  const dataDir = place(etcdDataDir, stacked(cps), [...names(prepare), ...names(certs)]);

  // ---- the first control plane (init) ----
  const etcd = place(etcdLocal, stacked(first), [dataDir.name, ...names(prepare), ...names(certs)]);
  const needsControllerImages = (t: Task) => (/kube-(controller-manager|scheduler)$/.test(t.name) ? [controllerImages.name] : []);
  // The controller manager and the scheduler start once the API server is ready: their first leader
  // election then finds its RBAC in place instead of failing and retrying 2 to 4.4 s later.
  const [apiServer, ...firstControllers] = controlPlaneTasks({ hosts: first, after: [] }).map((t) =>
    place(t, first, [...names(prepare), ...names(certs), ...names(kubeconfigs), ETCD_EXTERNAL_HEALTH_TASK, ...needsControllerImages(t)]),
  );
  const apiWait = waitControlPlaneTask({ hosts: first, after: [kubelet.name, etcd.name, apiServer.name], name: WAIT_API_SERVER_TASK, controllers: false });
  const controllers = firstControllers.map((t) => place(t, first, [apiWait.name]));
  const wait = waitControlPlaneTask({ hosts: first, after: [kubelet.name, etcd.name, apiWait.name, ...names(controllers)] });
  const ha = haTasks({ hosts: cps, after: names(prepareRuntime), endpoint: { hosts: first, after: [wait.name] } });
  const apiReady = [wait.name, HA_ENDPOINT_TASK];
  // join alone still needs a bootstrap token for its workers: the first control plane makes or reuses it.
  // A join through the API alone (ctx.joinTo) brings its own token.
  const tokenMaker: Select = (ctx) => (ctx.joinTo ? [] : [firstControlPlane(ctx)]);
  const bootstrap = inInit ? bootstrapTasks().map((t) => place(t, first, apiReady)) : [place(bootstrapTokenTask(), tokenMaker, apiReady)];
  const cniImages = cniImagesTask({ hosts: everyone, after: names(prepareRuntime) });
  const uploadCerts = inInit ? [place(uploadCertsTask(), first, [...apiReady, CLUSTER_ADMINS_TASK])] : [];
  const addons = inInit
    ? [...addonsTasks(), cniManifestTask({ after: [] })].map((t) => place(t, first, [...apiReady, CLUSTER_ADMINS_TASK, addonImages.name, cniImages.name]))
    : [];

  // ---- the other control planes (join --control-plane), one etcd member at a time ----
  // With external etcd a joining control plane has no member of its own: these run on no host.
  const memberAdd = etcdMemberAddTask({ hosts: stacked(joining), after: [kubelet.name, dataDir.name, ...apiReady] });
  // Not checked ahead: joining through the API alone, its flags name the members etcd holds once memberAdd ran.
  const joinEtcd = Object.assign(place(componentTask("etcd", CP_JOIN, `${CP_JOIN}/etcd`, joining, []), stacked(joining), [memberAdd.name], { perHost: true }), { checkAhead: false });
  const promote = etcdPromoteTask({ hosts: stacked(joining), after: [joinEtcd.name] });
  const joinControlPlane = controlPlaneTasks({ hosts: joining, after: [], prefix: CP_JOIN, phase: CP_JOIN }).map((t) =>
    place(t, joining, [promote.name, ...names(kubeconfigs), ...apiReady, ...needsControllerImages(t)], { perHost: true }),
  );
  const joinWait = waitControlPlaneTask({ hosts: joining, after: names(joinControlPlane), name: `${CP_JOIN}/wait`, phase: CP_JOIN, perHost: true });
  const joinMark = markControlPlaneTask({ hosts: joining, after: [joinWait.name, CLUSTER_ADMINS_TASK], name: `${CP_JOIN}/mark-control-plane`, phase: CP_JOIN });
  const joinCni = cniTask({ hosts: joining, after: [joinWait.name, CLUSTER_ADMINS_TASK], name: `${CP_JOIN}/cni`, phase: CP_JOIN });

  // ---- workers (join, TLS bootstrap) ----
  const token = bootstrap.find((t) => t.name.startsWith("bootstrap-token/"))!;
  const workerKubeconfig = joinKubeconfigTask({
    hosts: joiningWorkers,
    after: [...names(prepare), token.name],
    server: joinServer,
    ca: clusterCa,
  });
  const workerKubelet = kubeletStartTask({ hosts: joiningWorkers, bootstrap: true, name: "kubelet-start/kubelet-bootstrap", after: [workerKubeconfig.name], perHost: true });
  const workerCni = cniTask({ hosts: joiningWorkers, after: [workerKubelet.name], name: "join/cni", phase: "join" });
  // up and apply (not init or join alone, as kubeadm): return once a new pod can resolve names.
  const clusterReady = scope === "all" ? [clusterReadyTask({ hosts: first, after: [...names(addons), joinMark.name, joinCni.name, workerCni.name] })] : [];

  const all: Task[] = [
    ...preflight,
    ...downloadCerts,
    ...prepare,
    controllerImages,
    ...externalEtcd,
    ...certs,
    ...kubeconfigs,
    kubelet,
    dataDir,
    etcd,
    apiServer,
    apiWait,
    ...controllers,
    wait,
    ...ha,
    ...bootstrap,
    ...uploadCerts,
    addonImages,
    cniImages,
    ...addons,
    memberAdd,
    joinEtcd,
    promote,
    ...joinControlPlane,
    joinWait,
    joinMark,
    joinCni,
    workerKubeconfig,
    workerKubelet,
    workerCni,
    ...clusterReady,
  ];
  // A dependency outside this scope stands for what already exists on the cluster.
  const present = new Set(names(all));
  return all.map((t) => {
    const after = (t.after ?? []).filter((n) => present.has(n));
    if (after.length === (t.after ?? []).length) return t;
    const copy = Object.assign(Object.create(Object.getPrototypeOf(t)) as Task, t);
    copy.after = after;
    return copy;
  });
}
