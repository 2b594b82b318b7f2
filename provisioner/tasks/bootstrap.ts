// Bootstrap phases, run on the first control plane once the API server answers /readyz, in
// kubeadm's order and with kubeadm's object names: the cluster-admins binding (with
// super-admin.conf, so admin.conf works), upload-config, mark-control-plane, bootstrap-token,
// cluster-info (with a detached JWS per signing token) and the RBAC for joining nodes.
// Every check is a few GETs; every apply is server-side apply of the objects kubeprov owns.
import type { ApplyResult, CheckResult, Host, RunContext, Task } from "../engine/task.js";
import { HostError, UsageError } from "../errors.js";
import { LABEL_CONTROL_PLANE, PKI_DIR, TAINT_CONTROL_PLANE } from "../constants.js";
import {
  apiClient,
  firstControlPlane,
  objectPath,
  objectsToApply,
  waitFor,
  type KubeApi,
  type KubeObject,
} from "../bootstrap/api.js";
import {
  apiServerURL,
  bootstrapRbacObjects,
  clusterAdminsObjects,
  clusterInfoConfigMap,
  clusterInfoKubeconfig,
  clusterInfoRbacObjects,
  CLUSTER_INFO,
  JWS_KEY_PREFIX,
  uploadConfigObjects,
} from "../bootstrap/manifests.js";
import {
  BOOTSTRAP_TOKEN_SECRET_TYPE,
  DEFAULT_TOKEN_DESCRIPTION,
  DEFAULT_TOKEN_TTL_MS,
  formatToken,
  generateToken,
  isExpired,
  isUsableJoinToken,
  parseDuration,
  parseTokenSecret,
  requireToken,
  SHARED_TOKEN,
  tokenSecret,
  type BootstrapToken,
  type TokenInfo,
} from "../bootstrap/token.js";
import { kubeadmConfigObjects, kubeletConfigObjects } from "../bootstrap/kubeadm-config.js";
import { renderKubeletConfig } from "./kubelet.js";
import { componentImage } from "./controlplane.js";

export const CLUSTER_ADMINS_TASK = "bootstrap-rbac/cluster-admins";
export const UPLOAD_CONFIG_TASK = "upload-config/cluster";
export const UPLOAD_KUBEADM_CONFIG_TASK = "upload-config/kubeadm";
export const UPLOAD_KUBELET_CONFIG_TASK = "upload-config/kubelet";
export const MARK_CONTROL_PLANE_TASK = "mark-control-plane/node";
export const BOOTSTRAP_TOKEN_TASK = "bootstrap-token/token";
export const CLUSTER_INFO_TASK = "cluster-info/configmap";
export const NODE_BOOTSTRAP_RBAC_TASK = "bootstrap-rbac/node-bootstrap";
export { SHARED_TOKEN };
/** How long a Node may take to register after the API server is ready. */
export const NODE_REGISTER_TIMEOUT_MS = 120_000;
/** A token with less than this left is not reused for the join lines init prints. */
export const TOKEN_REUSE_MARGIN_MS = 3_600_000;
export const LABEL_EXCLUDE_FROM_LB = "node.kubernetes.io/exclude-from-external-load-balancers";

const onFirstControlPlane = (ctx: RunContext): Host[] => [firstControlPlane(ctx)];

// ---- generic: "these objects exist with these fields" ------------------------------------------

export interface ObjectsTaskSpec {
  name: string;
  phase: string;
  description: string;
  after?: string[];
  /** Which kubeconfig talks to the API (default admin). */
  client?: "admin" | "super-admin";
  objects(ctx: RunContext): Promise<KubeObject[]> | KubeObject[];
  hosts?: (ctx: RunContext) => Host[];
  /** `objects` needs only the cluster file and the hosts (no token or other value of the run): see Task.checkAhead. */
  checkAhead?: boolean;
}

/** A task keeping `objects` in the cluster: check GETs each one, apply server-side-applies the ones missing or different. */
export function objectsTask(spec: ObjectsTaskSpec): Task {
  const plans = new WeakMap<RunContext, Promise<{ obj: KubeObject; why: string }[]>>();
  const plan = (ctx: RunContext, fresh = false) => {
    let p = plans.get(ctx);
    if (!p || fresh) {
      p = (async () => objectsToApply(await apiClient(ctx, spec.client), await spec.objects(ctx)))();
      plans.set(ctx, p);
    }
    return p;
  };
  return {
    name: spec.name,
    phase: spec.phase,
    description: spec.description,
    hosts: spec.hosts ?? onFirstControlPlane,
    ...(spec.after?.length ? { after: spec.after } : {}),
    ...(spec.checkAhead ? { checkAhead: true } : {}),
    async check(_host, ctx): Promise<CheckResult> {
      const todo = await plan(ctx, true);
      if (!todo.length) return { needed: false, reason: "all objects up to date" };
      return { needed: true, reason: todo.map((t) => t.why).join(", ") };
    },
    async apply(_host, ctx): Promise<ApplyResult> {
      const api = await apiClient(ctx, spec.client);
      const todo = await plan(ctx);
      // In template order: ServiceAccounts, RBAC and ConfigMaps before the workloads that use them.
      for (const t of todo) await api.apply(t.obj);
      return { detail: todo.map((t) => t.why).join(", ") };
    },
  };
}

// ---- nodes -------------------------------------------------------------------------------------

type NodeObject = KubeObject & {
  spec?: { podCIDR?: string; podCIDRs?: string[]; taints?: { key: string; value?: string; effect: string }[] };
};

/** The Node of `host` (named like the host), waiting up to `timeoutMs` for it to register. */
export async function waitForNode(api: KubeApi, host: Host, timeoutMs = NODE_REGISTER_TIMEOUT_MS): Promise<NodeObject> {
  const path = objectPath("v1", "Node", host.name);
  const node = await waitFor(() => api.get<NodeObject>(path), timeoutMs);
  if (!node) {
    throw new HostError(
      host.name,
      undefined,
      `Node ${host.name} did not register within ${Math.round(timeoutMs / 1000)} s`,
      "the kubelet on this host has not registered: see `journalctl -u kubelet` on it",
    );
  }
  return node;
}

/** What mark-control-plane wants on a node: the labels, and the taint unless the node is also a worker. */
export function controlPlaneMarks(host: Host, node: NodeObject): { labels: Record<string, string>; taints: NonNullable<NonNullable<NodeObject["spec"]>["taints"]>; changes: string[] } {
  const labels = node.metadata.labels ?? {};
  const changes: string[] = [];
  const wantLabels: Record<string, string> = { [LABEL_CONTROL_PLANE]: "", [LABEL_EXCLUDE_FROM_LB]: "" };
  for (const [k, v] of Object.entries(wantLabels)) if (labels[k] !== v) changes.push(`label ${k}`);
  const taints = node.spec?.taints ?? [];
  const isOurs = (t: { key: string; effect: string }) => t.key === TAINT_CONTROL_PLANE && t.effect === "NoSchedule";
  const wantTaint = !host.roles.includes("worker");
  const has = taints.some(isOurs);
  let newTaints = taints;
  if (wantTaint && !has) {
    newTaints = [...taints, { key: TAINT_CONTROL_PLANE, effect: "NoSchedule" }];
    changes.push(`taint ${TAINT_CONTROL_PLANE}:NoSchedule`);
  } else if (!wantTaint && has) {
    newTaints = taints.filter((t) => !isOurs(t));
    changes.push(`remove taint ${TAINT_CONTROL_PLANE}:NoSchedule (the node is also a worker)`);
  }
  return { labels: wantLabels, taints: newTaints, changes };
}

/** Label (and taint or untaint) control-plane nodes. Default: the first control plane (init). */
export function markControlPlaneTask(opts: { hosts?: (ctx: RunContext) => Host[]; after?: string[]; name?: string; phase?: string } = {}): Task {
  return {
    name: opts.name ?? MARK_CONTROL_PLANE_TASK,
    phase: opts.phase ?? "mark-control-plane",
    description: `label ${LABEL_CONTROL_PLANE}; taint it NoSchedule unless the node is also a worker`,
    waitsFor: "the kubelet registering its Node",
    hosts: opts.hosts ?? onFirstControlPlane,
    ...(opts.after?.length ? { after: opts.after } : {}),
    perHost: true,
    async check(host, ctx) {
      const api = await apiClient(ctx);
      const node = await api.get<NodeObject>(objectPath("v1", "Node", host.name));
      if (!node) return { needed: true, reason: `Node ${host.name} not registered yet` };
      const { changes } = controlPlaneMarks(host, node);
      return changes.length ? { needed: true, reason: changes.join(", ") } : { needed: false, reason: "labels and taints as wanted" };
    },
    async apply(host, ctx) {
      const api = await apiClient(ctx);
      const path = objectPath("v1", "Node", host.name);
      for (let attempt = 0; ; attempt++) {
        const node = await waitForNode(api, host);
        const { labels, taints, changes } = controlPlaneMarks(host, node);
        if (!changes.length) return { detail: "already marked" };
        // resourceVersion makes it a compare-and-swap: the node lifecycle controller edits taints too.
        const r = await api.mergePatch(path, { metadata: { labels, resourceVersion: node.metadata.resourceVersion }, spec: { taints } });
        if (r.status >= 200 && r.status < 300) return { detail: changes.join(", ") };
        if (r.status !== 409 || attempt >= 5) throw new HostError(host.name, MARK_CONTROL_PLANE_TASK, `PATCH ${path}: ${r.status} ${r.text.slice(0, 200)}`);
      }
    },
  };
}

// ---- tokens ------------------------------------------------------------------------------------

/** Every bootstrap token in the cluster (well-formed Secrets only). */
export async function listTokens(api: KubeApi): Promise<TokenInfo[]> {
  const secrets = await api.list(`${objectPath("v1", "Secret", "", "kube-system")}?fieldSelector=${encodeURIComponent(`type=${BOOTSTRAP_TOKEN_SECRET_TYPE}`)}`);
  return secrets.map(parseTokenSecret).filter((t): t is TokenInfo => !!t);
}

/** The token options of a run: --token (validated), --token-ttl, description. Throws UsageError. */
export function tokenOptions(options: Record<string, unknown>): { token?: BootstrapToken; ttlMs: number; description: string } {
  const raw = options.token;
  const ttl = options.tokenTtl;
  return {
    ...(typeof raw === "string" && raw !== "" ? { token: requireToken(raw) } : {}),
    ttlMs: typeof ttl === "number" ? ttl : typeof ttl === "string" ? parseDuration(ttl, "--token-ttl") : DEFAULT_TOKEN_TTL_MS,
    description: typeof options.tokenDescription === "string" ? options.tokenDescription : DEFAULT_TOKEN_DESCRIPTION,
  };
}

/** The best existing token to join with: never-expiring first, then the latest expiry. */
export function pickJoinToken(tokens: TokenInfo[], now = new Date(), marginMs = TOKEN_REUSE_MARGIN_MS): TokenInfo | undefined {
  const usable = tokens.filter((t) => isUsableJoinToken(t, now, marginMs));
  usable.sort((a, b) => (b.expires?.getTime() ?? Infinity) - (a.expires?.getTime() ?? Infinity) || a.id.localeCompare(b.id));
  return usable[0];
}

export function bootstrapTokenTask(opts: { after?: string[] } = {}): Task {
  // Decided in check, done in apply (so apply writes the token check chose).
  const decisions = new WeakMap<RunContext, { create?: BootstrapToken; use: string }>();
  const decide = async (ctx: RunContext) => {
    const { token, ttlMs } = tokenOptions(ctx.options);
    const tokens = await listTokens(await apiClient(ctx));
    if (token) {
      const have = tokens.find((t) => t.id === token.id);
      const ok = have && have.secret === token.secret && !isExpired(have) && isUsableJoinToken(have, new Date(), 0);
      return { ...(ok ? {} : { create: token }), use: formatToken(token), reason: ok ? `token ${token.id} exists` : have ? `replace token ${token.id}` : `create token ${token.id} (given)` };
    }
    // A short --token-ttl must not make every re-run create a token: reuse one with half its TTL left.
    const existing = pickJoinToken(tokens, new Date(), ttlMs > 0 ? Math.min(TOKEN_REUSE_MARGIN_MS, ttlMs / 2) : TOKEN_REUSE_MARGIN_MS);
    if (existing) return { use: formatToken(existing), reason: `token ${existing.id} exists and is valid` };
    const fresh = generateToken();
    return { create: fresh, use: formatToken(fresh), reason: `create a bootstrap token (${tokens.length} exist, none usable)` };
  };
  return {
    name: BOOTSTRAP_TOKEN_TASK,
    phase: "bootstrap-token",
    description: "a bootstrap token for joining nodes (Secret kube-system/bootstrap-token-<id>)",
    hosts: onFirstControlPlane,
    ...(opts.after?.length ? { after: opts.after } : {}),
    async check(_host, ctx) {
      const d = await decide(ctx);
      decisions.set(ctx, d);
      if (!d.create) ctx.shared.set(SHARED_TOKEN, d.use);
      return { needed: !!d.create, reason: d.reason };
    },
    async apply(_host, ctx) {
      const d = decisions.get(ctx) ?? (await decide(ctx));
      if (!d.create) {
        ctx.shared.set(SHARED_TOKEN, d.use);
        return { detail: "token exists" };
      }
      const { ttlMs, description } = tokenOptions(ctx.options);
      const api = await apiClient(ctx);
      await api.apply(tokenSecret(d.create, { ttlMs, description }) as KubeObject);
      ctx.shared.set(SHARED_TOKEN, d.use);
      return { detail: `token ${d.create.id} created, ${ttlMs ? `expires in ${Math.round(ttlMs / 60_000)} min` : "never expires"}` };
    },
  };
}

// ---- cluster-info ------------------------------------------------------------------------------

/** What cluster-info must hold now: the kubeconfig and one JWS per valid signing token. */
export async function desiredClusterInfo(api: KubeApi, cluster: RunContext["cluster"], caPem: string, firstControlPlaneIP: string): Promise<KubeObject> {
  const tokens = (await listTokens(api)).filter((t) => !isExpired(t) && t.usages.includes("signing"));
  const kubeconfig = clusterInfoKubeconfig(caPem, apiServerURL(cluster, firstControlPlaneIP));
  return clusterInfoConfigMap(kubeconfig, tokens.map(formatToken));
}

/** Differences between the cluster-info there and the one wanted (stale JWS entries included). */
export function clusterInfoDifferences(want: KubeObject, have: KubeObject | undefined): string[] {
  if (!have) return ["create ConfigMap kube-public/cluster-info"];
  const w = (want.data ?? {}) as Record<string, string>;
  const h = (have.data ?? {}) as Record<string, string>;
  const out: string[] = [];
  if (h.kubeconfig !== w.kubeconfig) out.push("update its kubeconfig");
  for (const k of Object.keys(w)) if (k.startsWith(JWS_KEY_PREFIX) && h[k] !== w[k]) out.push(`sign for token ${k.slice(JWS_KEY_PREFIX.length)}`);
  for (const k of Object.keys(h)) if (k.startsWith(JWS_KEY_PREFIX) && !(k in w)) out.push(`drop the signature of token ${k.slice(JWS_KEY_PREFIX.length)}`);
  return out;
}

/** Brings cluster-info in line (used by the task and by `token create|delete`). Returns what changed. */
export async function syncClusterInfo(api: KubeApi, want: KubeObject): Promise<string[]> {
  const path = objectPath("v1", "ConfigMap", CLUSTER_INFO, "kube-public");
  const have = await api.get(path);
  const diffs = clusterInfoDifferences(want, have);
  if (!diffs.length) return [];
  const applied = await api.apply(want);
  // Entries another manager wrote (the bootstrap signer) for tokens that are gone: remove them.
  const stale = Object.keys((applied.data ?? {}) as Record<string, string>).filter((k) => k.startsWith(JWS_KEY_PREFIX) && !(k in (want.data as object)));
  if (stale.length) {
    const r = await api.mergePatch(path, { data: Object.fromEntries(stale.map((k) => [k, null])) });
    if (r.status < 200 || r.status >= 300) throw new HostError(api.hostName, CLUSTER_INFO_TASK, `PATCH ${path}: ${r.status} ${r.text.slice(0, 200)}`);
  }
  return diffs;
}

async function readCaPem(host: Host): Promise<string> {
  const ca = await host.transport.readFile(`${PKI_DIR}/ca.crt`);
  if (!ca) throw new HostError(host.name, CLUSTER_INFO_TASK, `${PKI_DIR}/ca.crt not found: the certs phase has not run`);
  return ca.toString("utf8");
}

export function clusterInfoTask(opts: { after?: string[] } = {}): Task {
  const want = async (host: Host, ctx: RunContext) => desiredClusterInfo(await apiClient(ctx), ctx.cluster, await readCaPem(host), host.nodeIP);
  const rbac = objectsTask({ name: "cluster-info/rbac", phase: "cluster-info", description: "", objects: () => clusterInfoRbacObjects() });
  return {
    name: CLUSTER_INFO_TASK,
    phase: "cluster-info",
    description: "kube-public/cluster-info (CA + API server, a JWS per token), readable without credentials",
    hosts: onFirstControlPlane,
    ...(opts.after?.length ? { after: opts.after } : {}),
    async check(host, ctx) {
      const api = await apiClient(ctx);
      const diffs = clusterInfoDifferences(await want(host, ctx), await api.get(objectPath("v1", "ConfigMap", CLUSTER_INFO, "kube-public")));
      const r = await rbac.check(host, ctx);
      if (r.needed) diffs.push(r.reason ?? "RBAC");
      return diffs.length ? { needed: true, reason: diffs.join(", ") } : { needed: false, reason: "cluster-info up to date" };
    },
    async apply(host, ctx) {
      const api = await apiClient(ctx);
      const [diffs] = await Promise.all([syncClusterInfo(api, await want(host, ctx)), rbac.check(host, ctx).then((r) => (r.needed ? rbac.apply(host, ctx) : undefined))]);
      return { detail: diffs.join(", ") || "RBAC" };
    },
  };
}

// ---- the list ----------------------------------------------------------------------------------

/**
 * The bootstrap phases, in order, for the first control plane once the API answers. `after`: the
 * task(s) they wait for (the wait-control-plane task).
 */
export function bootstrapTasks(opts: { after?: string[] } = {}): Task[] {
  const after = opts.after ?? [];
  const afterAdmins = [...after, CLUSTER_ADMINS_TASK];
  return [
    objectsTask({
      name: CLUSTER_ADMINS_TASK,
      phase: "bootstrap-rbac",
      description: "ClusterRoleBinding kubeadm:cluster-admins (so admin.conf is cluster-admin), with super-admin.conf",
      client: "super-admin",
      after,
      objects: () => clusterAdminsObjects(),
    }),
    objectsTask({
      name: UPLOAD_CONFIG_TASK,
      phase: "upload-config",
      description: "ConfigMap kube-system/kubeprov-config with the effective cluster file",
      after: afterAdmins,
      objects: (ctx) => uploadConfigObjects(ctx.cluster),
    }),
    objectsTask({
      name: UPLOAD_KUBEADM_CONFIG_TASK,
      phase: "upload-config",
      description: "ConfigMap kube-system/kubeadm-config (kubeadm's ClusterConfiguration) and who may read it",
      after: afterAdmins,
      objects: (ctx) => kubeadmConfigObjects(ctx.cluster, { firstControlPlaneIP: firstControlPlane(ctx).nodeIP, etcdImage: etcdImageOrNone(ctx) }),
    }),
    objectsTask({
      name: UPLOAD_KUBELET_CONFIG_TASK,
      phase: "upload-config",
      description: "ConfigMap kube-system/kubelet-config (the kubelet configuration every node shares) and who may read it",
      after: afterAdmins,
      objects: (ctx) => kubeletConfigObjects(renderKubeletConfig(ctx.cluster, firstControlPlane(ctx))),
    }),
    markControlPlaneTask({ after: afterAdmins }),
    bootstrapTokenTask({ after: afterAdmins }),
    clusterInfoTask({ after: [...afterAdmins, BOOTSTRAP_TOKEN_TASK] }),
    objectsTask({
      name: NODE_BOOTSTRAP_RBAC_TASK,
      phase: "bootstrap-rbac",
      description: "RBAC for joining nodes: CSR creation, auto-approval of node client certificates and renewals, get nodes",
      after: afterAdmins,
      objects: () => bootstrapRbacObjects(),
    }),
  ];
}

/** The etcd image kubeprov's static pods run, when the artifacts say (a downloaded release names no etcd build). */
function etcdImageOrNone(ctx: RunContext): string | undefined {
  try {
    return componentImage(ctx.cluster, "etcd");
  } catch {
    return undefined;
  }
}

/** Fails fast (exit 2) on bad token options, before any host is touched. */
export function validateTokenOptions(options: Record<string, unknown>): void {
  try {
    tokenOptions(options);
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError(String((e as Error).message));
  }
}
