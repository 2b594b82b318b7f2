// The optional add-ons of spec.addons (storage, metrics-server), as data: the name users type, the
// cluster-file field that switches each on, its image and its objects. One task per add-on keeps
// the cluster in line with the file both ways: enabled, its objects are applied (server-side, only
// those missing or different); disabled, every object it makes is deleted. A re-run changes nothing.
import type { ApplyResult, CheckResult, Host, RunContext, Task } from "../engine/task.js";
import { HostError } from "../errors.js";
import { apiClient, describeObject, firstControlPlane, objectsToApply, pathOf, type KubeApi, type KubeObject } from "../bootstrap/api.js";
import { apiServerURL, metricsServerObjects, storageObjects } from "../bootstrap/manifests.js";
import { clusterImageRef, type BundleVersions, type ImageName } from "../images/catalog.js";
import { readBundleManifest } from "../images/build.js";
import { LOCAL_PATH_PROVISIONER_VERSION, METRICS_SERVER_VERSION } from "../constants.js";
import type { Cluster } from "../spec/schema.js";
import { bundlePath } from "./images.js";

export type AddonKey = keyof Cluster["spec"]["addons"];

export interface OptionalAddon {
  /** What `kubeprov addons enable NAME` takes (minikube's spelling). */
  name: string;
  /** Its field under spec.addons. */
  key: AddonKey;
  description: string;
  image: ImageName;
  /** The bundle manifest's field holding the version its image is built at. */
  versionField: "localPathProvisionerVersion" | "metricsServerVersion";
  /** The version kubeprov builds when the bundle does not say (constants.ts). */
  defaultVersion: string;
  objects(cluster: Cluster, opts: { image: string; apiServer?: string }): KubeObject[];
}

export const OPTIONAL_ADDONS: readonly OptionalAddon[] = [
  {
    name: "storage",
    key: "storage",
    description: "default StorageClass \"standard\" with local-path-provisioner (a host directory per volume)",
    image: "local-path-provisioner",
    versionField: "localPathProvisionerVersion",
    defaultVersion: LOCAL_PATH_PROVISIONER_VERSION,
    objects: (cluster, opts) => storageObjects(cluster, opts),
  },
  {
    name: "metrics-server",
    key: "metricsServer",
    description: "metrics-server: the resource metrics API behind `kubectl top`",
    image: "metrics-server",
    versionField: "metricsServerVersion",
    defaultVersion: METRICS_SERVER_VERSION,
    objects: (_cluster, opts) => metricsServerObjects(opts),
  },
];

export function findAddon(name: string): OptionalAddon | undefined {
  return OPTIONAL_ADDONS.find((a) => a.name === name);
}

export function addonEnabled(cluster: Cluster, addon: OptionalAddon): boolean {
  return cluster.spec.addons[addon.key].enabled;
}

export function addonTaskName(addon: OptionalAddon): string {
  return `addons/${addon.name}`;
}

/** The bundle's versions, or undefined when there is no bundle here (a cluster built elsewhere). */
function bundleVersions(cluster: Cluster): BundleVersions | undefined {
  try {
    return readBundleManifest(bundlePath(cluster));
  } catch {
    return undefined;
  }
}

/**
 * The add-on's objects as kubeprov applies them. With `forRemoval`, only their names matter: the
 * image falls back to the version kubeprov builds when the bundle does not name one.
 */
export function addonObjects(addon: OptionalAddon, cluster: Cluster, opts: { apiServer?: string; forRemoval?: boolean; host?: string } = {}): KubeObject[] {
  const version = bundleVersions(cluster)?.[addon.versionField];
  if (!version && !opts.forRemoval) {
    throw new HostError(
      opts.host ?? "(local)",
      addonTaskName(addon),
      `the bundle at ${bundlePath(cluster)} has no ${addon.image} (built before the ${addon.name} add-on was part of it)`,
      "rebuild it: bash scripts/build-bundle.sh, then node dist/scripts/images.js",
    );
  }
  const image = clusterImageRef(cluster, addon.image, { kubernetesVersion: cluster.spec.kubernetesVersion, etcdVersion: "", corednsVersion: "", [addon.versionField]: version ?? addon.defaultVersion });
  return addon.objects(cluster, { image, ...(opts.apiServer ? { apiServer: opts.apiServer } : {}) });
}

/** Those of `objs` that exist in the cluster (an object being deleted counts as gone). */
export async function presentObjects(api: KubeApi, objs: KubeObject[]): Promise<KubeObject[]> {
  const states = await Promise.all(objs.map((o) => api.get(pathOf(o))));
  return objs.filter((_, i) => states[i] && !states[i]!.metadata.deletionTimestamp);
}

type Plan = { mode: "apply"; todo: { obj: KubeObject; why: string }[] } | { mode: "remove"; todo: KubeObject[] };

/** The task keeping one add-on as the file says: applied when enabled, removed when not. */
export function optionalAddonTask(addon: OptionalAddon, opts: { after?: string[] } = {}): Task {
  const plans = new WeakMap<RunContext, Promise<Plan>>();
  const plan = (host: Host, ctx: RunContext, fresh: boolean): Promise<Plan> => {
    let p = plans.get(ctx);
    if (!p || fresh) {
      p = (async (): Promise<Plan> => {
        const api = await apiClient(ctx);
        if (addonEnabled(ctx.cluster, addon)) {
          const objs = addonObjects(addon, ctx.cluster, { apiServer: apiServerURL(ctx.cluster, firstControlPlane(ctx).nodeIP), host: host.name });
          return { mode: "apply", todo: await objectsToApply(api, objs) };
        }
        return { mode: "remove", todo: await presentObjects(api, addonObjects(addon, ctx.cluster, { forRemoval: true })) };
      })();
      plans.set(ctx, p);
    }
    return p;
  };
  return {
    name: addonTaskName(addon),
    phase: "addons",
    description: `${addon.description}: applied when spec.addons.${addon.key}.enabled, removed when not`,
    hosts: (ctx) => [firstControlPlane(ctx)],
    ...(opts.after?.length ? { after: opts.after } : {}),
    async check(host, ctx): Promise<CheckResult> {
      const p = await plan(host, ctx, true);
      if (!p.todo.length) return { needed: false, reason: p.mode === "apply" ? "all objects up to date" : "disabled, none of its objects present" };
      if (p.mode === "apply") return { needed: true, reason: p.todo.map((t) => t.why).join(", ") };
      return { needed: true, reason: `disabled: delete ${p.todo.map(describeObject).join(", ")}` };
    },
    async apply(host, ctx): Promise<ApplyResult> {
      const api = await apiClient(ctx);
      const p = await plan(host, ctx, false);
      if (p.mode === "apply") {
        // In template order: ServiceAccounts, RBAC and ConfigMaps before the workloads that use them.
        for (const t of p.todo) await api.apply(t.obj);
        return { detail: p.todo.map((t) => t.why).join(", ") };
      }
      // In reverse: the APIService (or StorageClass) goes first, so nothing is routed to a workload
      // that is already gone; a Deployment's ReplicaSets and pods follow it (background deletion).
      const gone: string[] = [];
      for (const o of [...p.todo].reverse()) {
        await api.delete(pathOf(o));
        gone.push(describeObject(o));
      }
      return { detail: `deleted ${gone.join(", ")}` };
    },
  };
}

export function optionalAddonTasks(opts: { after?: string[] } = {}): Task[] {
  return OPTIONAL_ADDONS.map((a) => optionalAddonTask(a, opts));
}

// ---- state in the cluster (addons list) ------------------------------------------------------

export type AddonState = "Running" | "Starting" | "Partial" | "Absent";

export interface AddonStatus {
  name: string;
  /** What the cluster file says. */
  enabled: boolean;
  state: AddonState;
  /** Why it is not Running (or what runs). */
  detail: string;
}

type Condition = { type?: string; status?: string; reason?: string; message?: string };
type Deployment = KubeObject & { spec?: { replicas?: number }; status?: { availableReplicas?: number; replicas?: number } };
type ApiService = KubeObject & { status?: { conditions?: Condition[] } };

/**
 * What the cluster holds of an add-on: Absent (none of its objects), Partial (some), Starting
 * (all, but its Deployment has no available replica yet, or its APIService is not Available), Running.
 */
export async function addonStatus(api: KubeApi, addon: OptionalAddon, cluster: Cluster): Promise<AddonStatus> {
  const objs = addonObjects(addon, cluster, { forRemoval: true });
  const states = await Promise.all(objs.map((o) => api.get<KubeObject>(pathOf(o))));
  const enabled = addonEnabled(cluster, addon);
  const present = states.filter((s) => s && !s.metadata.deletionTimestamp).length;
  if (present === 0) return { name: addon.name, enabled, state: "Absent", detail: "no objects in the cluster" };
  if (present < objs.length) {
    const missing = objs.filter((_, i) => !states[i] || states[i]!.metadata.deletionTimestamp).map(describeObject);
    return { name: addon.name, enabled, state: "Partial", detail: `${present} of ${objs.length} objects; missing ${missing.join(", ")}` };
  }
  const waiting: string[] = [];
  objs.forEach((o, i) => {
    if (o.kind === "Deployment") {
      const d = states[i] as Deployment;
      const want = d.spec?.replicas ?? 1;
      const have = d.status?.availableReplicas ?? 0;
      if (have < want) waiting.push(`${describeObject(o)}: ${have}/${want} available`);
    }
    if (o.kind === "APIService") {
      const c = (states[i] as ApiService).status?.conditions?.find((x) => x.type === "Available");
      if (c?.status !== "True") waiting.push(`${describeObject(o)} not Available${c?.reason ? ` (${c.reason})` : ""}`);
    }
  });
  if (waiting.length) return { name: addon.name, enabled, state: "Starting", detail: waiting.join("; ") };
  return { name: addon.name, enabled, state: "Running", detail: `${objs.length} objects, ready` };
}
