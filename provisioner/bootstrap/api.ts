// A small Kubernetes API client for the bootstrap and addons tasks: HTTPS with the client
// certificate of a kubeconfig from the first control plane (admin.conf or super-admin.conf, read
// once over the host's transport; its key stays in memory and is never logged), one keep-alive
// connection, JSON in and out, server-side apply for the objects kubeprov owns.
// Requests go to the kubeconfig's server: the controlPlaneEndpoint or the first control plane,
// both addresses of the cluster file.
import { Agent, request as httpsRequest } from "node:https";
import { parse as parseYaml } from "yaml";
import { HostError } from "../errors.js";
import type { Host, RunContext } from "../engine/task.js";
import { KUBELET_KUBECONFIG, KUBERNETES_DIR } from "../constants.js";
import { KubectlApi } from "./kubectl.js";

export const FIELD_MANAGER = "kubeprov";
export const ADMIN_CONF = `${KUBERNETES_DIR}/admin.conf`;
export const SUPER_ADMIN_CONF = `${KUBERNETES_DIR}/super-admin.conf`;

export type KubeObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string>; resourceVersion?: string; [k: string]: unknown };
  [k: string]: unknown;
};

/** Where each kind kubeprov writes lives in the API. */
const RESOURCES: Record<string, { plural: string; namespaced: boolean }> = {
  ConfigMap: { plural: "configmaps", namespaced: true },
  Secret: { plural: "secrets", namespaced: true },
  ServiceAccount: { plural: "serviceaccounts", namespaced: true },
  Service: { plural: "services", namespaced: true },
  Node: { plural: "nodes", namespaced: false },
  Namespace: { plural: "namespaces", namespaced: false },
  Pod: { plural: "pods", namespaced: true },
  ClusterRole: { plural: "clusterroles", namespaced: false },
  ClusterRoleBinding: { plural: "clusterrolebindings", namespaced: false },
  Role: { plural: "roles", namespaced: true },
  RoleBinding: { plural: "rolebindings", namespaced: true },
  DaemonSet: { plural: "daemonsets", namespaced: true },
  Deployment: { plural: "deployments", namespaced: true },
  StorageClass: { plural: "storageclasses", namespaced: false },
  APIService: { plural: "apiservices", namespaced: false },
};

/** The URL path of an object (or, with name "", of its collection). */
export function objectPath(apiVersion: string, kind: string, name: string, namespace?: string): string {
  const r = RESOURCES[kind];
  if (!r) throw new Error(`kubeprov does not know the resource of kind ${kind}`);
  const group = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
  const ns = r.namespaced ? `/namespaces/${encodeURIComponent(namespace ?? "default")}` : "";
  return `${group}${ns}/${r.plural}${name ? `/${encodeURIComponent(name)}` : ""}`;
}

export function pathOf(obj: KubeObject): string {
  return objectPath(obj.apiVersion, obj.kind, obj.metadata.name, obj.metadata.namespace);
}

export function describeObject(obj: KubeObject): string {
  return `${obj.kind} ${obj.metadata.namespace ? `${obj.metadata.namespace}/` : ""}${obj.metadata.name}`;
}

export interface ApiResponse {
  status: number;
  text: string;
}

/** A non-2xx answer from the API server. */
export class ApiError extends HostError {
  constructor(
    host: string,
    readonly method: string,
    readonly path: string,
    readonly status: number,
    message: string,
  ) {
    super(host, undefined, `API ${method} ${path}: ${status} ${message}`);
    this.name = "ApiError";
  }
}

export interface KubeconfigCredentials {
  server: string;
  ca: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** A bearer token (a bootstrap token) instead of a client certificate. Sent in a header only. */
  token?: string;
}

/** The first cluster and user of a kubeconfig with embedded data (as kubeprov and kubeadm write them). */
export function credentialsFromKubeconfig(text: string): KubeconfigCredentials {
  const kc = parseYaml(text) as {
    clusters?: { cluster?: Record<string, string> }[];
    users?: { user?: Record<string, string> }[];
  };
  const cluster = kc?.clusters?.[0]?.cluster;
  const user = kc?.users?.[0]?.user;
  const b64 = (v: string | undefined, what: string) => {
    if (!v) throw new Error(`kubeconfig has no ${what}`);
    return Buffer.from(v, "base64");
  };
  if (!cluster?.server) throw new Error("kubeconfig has no cluster server");
  return {
    server: cluster.server,
    ca: b64(cluster["certificate-authority-data"], "certificate-authority-data"),
    cert: b64(user?.["client-certificate-data"], "client-certificate-data"),
    key: b64(user?.["client-key-data"], "client-key-data"),
  };
}

/** What bootstrap, addons and the token command need from the API (two ways to reach it below). */
export interface KubeApi {
  /** For messages: the host whose kubeconfig is used. */
  readonly hostName: string;
  /** How requests travel: HTTPS from here, or the bundle's kubectl on the node over SSH. */
  readonly via: "direct" | "kubectl";
  /** The object at `path`, or undefined when it does not exist. */
  get<T = KubeObject>(path: string): Promise<T | undefined>;
  list<T = KubeObject>(path: string): Promise<T[]>;
  /** POST; resolves false when it already exists. */
  create(obj: KubeObject): Promise<boolean>;
  /** Server-side apply of the fields kubeprov owns. */
  apply(obj: KubeObject): Promise<KubeObject>;
  /** JSON merge patch; resolves with the status (409 on a resourceVersion conflict) instead of throwing. */
  mergePatch(path: string, patch: unknown): Promise<ApiResponse>;
  /** DELETE; resolves false when it did not exist. */
  delete(path: string): Promise<boolean>;
  close(): void;
}

/** Requests over HTTPS from the machine kubeprov runs on, with the kubeconfig's client certificate. */
export class ApiClient implements KubeApi {
  readonly via = "direct" as const;
  private readonly agent: Agent;
  private readonly base: URL;
  private readonly authorization: Record<string, string>;

  constructor(
    /** For messages: the host whose kubeconfig this is. */
    readonly hostName: string,
    creds: KubeconfigCredentials,
    private readonly timeoutMs = 15_000,
  ) {
    this.base = new URL(creds.server);
    this.agent = new Agent({ keepAlive: true, maxSockets: 8, ca: creds.ca, cert: creds.cert, key: creds.key });
    this.authorization = creds.token ? { authorization: `Bearer ${creds.token}` } : {};
  }

  get server(): string {
    return this.base.origin;
  }

  close(): void {
    this.agent.destroy();
  }

  /**
   * One request; resolves with any status (rejects only when the server cannot be reached). A
   * request sent on a kept-alive connection that the other end had closed meanwhile (haproxy
   * reloads when a control plane joins or leaves, the virtual IP moves) fails with a reset; it is
   * sent again on a fresh connection, as Node's documentation advises. Every request kubeprov makes
   * may be repeated safely (create answers 409 the second time, apply and delete are idempotent).
   */
  async request(method: string, path: string, body?: unknown, contentType = "application/json", timeoutMs = this.timeoutMs): Promise<ApiResponse> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.requestOnce(method, path, body, contentType, timeoutMs);
      } catch (e) {
        if (!(e as { staleConnection?: boolean }).staleConnection || attempt >= 2) throw e;
      }
    }
  }

  private requestOnce(method: string, path: string, body: unknown, contentType: string, timeoutMs: number): Promise<ApiResponse> {
    const payload = body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          protocol: "https:",
          hostname: this.base.hostname.replace(/^\[|\]$/g, ""),
          port: this.base.port || 443,
          path,
          method,
          agent: this.agent,
          timeout: timeoutMs,
          headers: {
            accept: "application/json",
            "user-agent": "kubeprov",
            ...this.authorization,
            ...(payload !== undefined ? { "content-type": contentType, "content-length": Buffer.byteLength(payload) } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
          res.on("error", reject);
        },
      );
      req.on("timeout", () => req.destroy(new Error(`no answer from ${this.base.origin} within ${timeoutMs} ms`)));
      req.on("error", (e: NodeJS.ErrnoException) => {
        const staleConnection = req.reusedSocket && (e.code === "ECONNRESET" || e.code === "EPIPE" || /socket hang up/.test(e.message));
        reject(Object.assign(new HostError(this.hostName, undefined, `cannot reach the API server at ${this.base.origin}: ${e.message}`), { staleConnection }));
      });
      if (payload !== undefined) req.write(payload);
      req.end();
    });
  }

  private fail(method: string, path: string, r: ApiResponse): never {
    let message = r.text.slice(0, 300);
    try {
      message = (JSON.parse(r.text) as { message?: string }).message ?? message;
    } catch {
      /* not JSON */
    }
    throw new ApiError(this.hostName, method, path, r.status, message);
  }

  /** The object at `path`, or undefined when it does not exist. */
  async get<T = KubeObject>(path: string): Promise<T | undefined> {
    const r = await this.request("GET", path);
    if (r.status === 404) return undefined;
    if (r.status < 200 || r.status >= 300) this.fail("GET", path, r);
    return JSON.parse(r.text) as T;
  }

  async list<T = KubeObject>(path: string): Promise<T[]> {
    const r = await this.get<{ items?: T[] }>(path);
    return r?.items ?? [];
  }

  /** POST; resolves false when it already exists (409). */
  async create(obj: KubeObject): Promise<boolean> {
    const path = objectPath(obj.apiVersion, obj.kind, "", obj.metadata.namespace);
    const r = await this.request("POST", path, obj);
    if (r.status === 409) return false;
    if (r.status < 200 || r.status >= 300) this.fail("POST", path, r);
    return true;
  }

  /** Server-side apply of the fields kubeprov owns (a no-op on the server when nothing differs). */
  async apply(obj: KubeObject): Promise<KubeObject> {
    const path = `${pathOf(obj)}?fieldManager=${FIELD_MANAGER}&force=true`;
    const r = await this.request("PATCH", path, obj, "application/apply-patch+yaml");
    if (r.status < 200 || r.status >= 300) this.fail("PATCH", path, r);
    return JSON.parse(r.text) as KubeObject;
  }

  /** JSON merge patch. */
  async mergePatch(path: string, patch: unknown): Promise<ApiResponse> {
    return this.request("PATCH", path, patch, "application/merge-patch+json");
  }

  /** DELETE; resolves false when it did not exist. */
  async delete(path: string): Promise<boolean> {
    const r = await this.request("DELETE", path);
    if (r.status === 404) return false;
    if (r.status < 200 || r.status >= 300) this.fail("DELETE", path, r);
    return true;
  }
}

/**
 * true when every field of `want` is in `have` with the same value (objects: recursively, arrays:
 * same length, element by element). Fields the server adds (defaults, status) are ignored, so an
 * object kubeprov applied compares equal until someone changes a field kubeprov sets.
 */
export function isSubset(want: unknown, have: unknown): boolean {
  if (want === null || typeof want !== "object") {
    if (typeof want === "number" && typeof have === "string") return String(want) === have;
    return want === have;
  }
  if (Array.isArray(want)) {
    return Array.isArray(have) && have.length === want.length && want.every((w, i) => isSubset(w, have[i]));
  }
  if (have === null || typeof have !== "object" || Array.isArray(have)) return false;
  const h = have as Record<string, unknown>;
  return Object.entries(want as Record<string, unknown>).every(([k, v]) => (v === undefined ? true : isSubset(v, h[k])));
}

/** The objects (of `objs`) that are missing or differ on the server, with a short phrase each. */
export async function objectsToApply(api: KubeApi, objs: KubeObject[]): Promise<{ obj: KubeObject; why: string }[]> {
  const states = await Promise.all(objs.map((o) => api.get(pathOf(o))));
  const out: { obj: KubeObject; why: string }[] = [];
  objs.forEach((o, i) => {
    const have = states[i];
    if (!have) out.push({ obj: o, why: `create ${describeObject(o)}` });
    else if (!isSubset(stripForCompare(o), have)) out.push({ obj: o, why: `update ${describeObject(o)}` });
  });
  return out;
}

function stripForCompare(o: KubeObject): KubeObject {
  // Secret values are compared as the API returns them (base64 `data`); nothing to strip today.
  return o;
}

// ---- clients for a run -----------------------------------------------------------------------

/** The first control plane: where cluster-wide bootstrap work runs. */
import { firstControlPlane } from "../plan/topology.js";
export { firstControlPlane };

/** The transport for API requests: KUBEPROV_API_TRANSPORT (or ctx.options.apiTransport) = direct | kubectl | auto (default). */
export function apiTransportChoice(ctx: RunContext): "direct" | "kubectl" | "auto" {
  const v = (ctx.options.apiTransport as string | undefined) ?? process.env.KUBEPROV_API_TRANSPORT ?? "auto";
  return v === "direct" || v === "kubectl" ? v : "auto";
}

/** How long the reachability probe of the direct way may take before kubectl on the node is used. */
export const DIRECT_PROBE_TIMEOUT_MS = 3_000;

/**
 * A kubeconfig's text with the files its first cluster and user name (certificate-authority,
 * client-certificate, client-key: the kubelet's kubelet.conf points at its rotated certificate)
 * read through `read` and embedded as *-data. Unchanged when it names none.
 */
export async function inlineKubeconfigFiles(text: string, read: (path: string) => Promise<Buffer | undefined>): Promise<string> {
  const kc = parseYaml(text) as { clusters?: { cluster?: Record<string, string> }[]; users?: { user?: Record<string, string> }[] };
  const cluster = kc?.clusters?.[0]?.cluster;
  const user = kc?.users?.[0]?.user;
  const pairs: [Record<string, string> | undefined, string][] = [
    [cluster, "certificate-authority"],
    [user, "client-certificate"],
    [user, "client-key"],
  ];
  let changed = false;
  for (const [obj, field] of pairs) {
    const path = obj?.[field];
    if (!obj || !path || obj[`${field}-data`]) continue;
    const data = await read(path);
    if (!data) throw new Error(`${field} ${path} is missing`);
    obj[`${field}-data`] = data.toString("base64");
    delete obj[field];
    changed = true;
  }
  return changed ? JSON.stringify(kc) : text;
}

async function loadClient(ctx: RunContext, host: Host, file: string): Promise<KubeApi | undefined> {
  const data = await host.transport.readFile(file);
  if (!data) return undefined;
  const choice = apiTransportChoice(ctx);
  if (choice === "kubectl") return new KubectlApi(host, file);
  let direct: ApiClient;
  try {
    const text = await inlineKubeconfigFiles(data.toString("utf8"), (p) => host.transport.readFile(p));
    direct = new ApiClient(host.name, credentialsFromKubeconfig(text));
  } catch (e) {
    throw new HostError(host.name, undefined, `${file}: ${(e as Error).message}`);
  }
  if (choice === "direct") return direct;
  // auto: HTTPS from here when the API server answers (fast); otherwise (only SSH reaches the
  // nodes) the bundle's kubectl on the node.
  try {
    await direct.request("GET", "/version", undefined, undefined, DIRECT_PROBE_TIMEOUT_MS);
    return direct;
  } catch (e) {
    direct.close();
    ctx.log("debug", `API server not reachable from here (${(e as Error).message}); using kubectl on ${host.name}`, host);
    return new KubectlApi(host, file);
  }
}

/**
 * The API client of this run for `kind` (admin: admin.conf; super-admin: super-admin.conf, else
 * admin.conf), built once per run from the first control plane's file. Throws HostError when the
 * file is missing (the kubeconfig phase has not run).
 */
export async function apiClient(ctx: RunContext, kind: "admin" | "super-admin" = "admin"): Promise<KubeApi> {
  const key = `bootstrap.api.${kind}`;
  let p = ctx.shared.get(key) as Promise<KubeApi> | undefined;
  if (!p) {
    p = ctx.joinTo ? joiningNodeClient(ctx) : firstControlPlaneClient(ctx, kind);
    ctx.shared.set(key, p);
    p.catch(() => ctx.shared.delete(key));
  }
  return p;
}

/** How long a node joining through the API alone waits for credentials of its own (its kubelet's TLS bootstrap takes seconds). */
export const JOINING_CREDENTIALS_TIMEOUT_MS = 120_000;

/**
 * The client of a run that joins a cluster through the API alone (ctx.joinTo): the joining node's
 * own credentials, admin.conf on a control plane (written by its kubeconfig phase), else the
 * kubelet's kubelet.conf once its TLS bootstrap gave it a certificate (a worker: the Node
 * authorizer lets it read and update its own Node).
 */
async function joiningNodeClient(ctx: RunContext): Promise<KubeApi> {
  const host = ctx.hosts[0];
  if (!host) throw new HostError("-", undefined, "no host in this run to read credentials on");
  const client = await waitFor(async () => (await loadClient(ctx, host, ADMIN_CONF)) ?? (await loadClient(ctx, host, KUBELET_KUBECONFIG)), JOINING_CREDENTIALS_TIMEOUT_MS, 500);
  if (!client) throw new HostError(host.name, undefined, `neither ${ADMIN_CONF} nor ${KUBELET_KUBECONFIG} appeared within ${JOINING_CREDENTIALS_TIMEOUT_MS / 1000} s: the node has no credentials for the API yet`);
  return client;
}

function firstControlPlaneClient(ctx: RunContext, kind: "admin" | "super-admin"): Promise<KubeApi> {
  const host = firstControlPlane(ctx);
  return (async () => {
    const files = kind === "super-admin" ? [SUPER_ADMIN_CONF, ADMIN_CONF] : [ADMIN_CONF];
    for (const f of files) {
      const c = await loadClient(ctx, host, f);
      if (c) return c;
    }
    throw new HostError(host.name, undefined, `${files.join(" or ")} not found: the kubeconfig phase has not run on this host`);
  })();
}

/** Closes the clients a run opened (their idle connections do not keep Node alive anyway). */
export async function closeApiClients(ctx: RunContext): Promise<void> {
  for (const kind of ["admin", "super-admin"]) {
    const p = ctx.shared.get(`bootstrap.api.${kind}`) as Promise<KubeApi> | undefined;
    if (p) (await p.catch(() => undefined))?.close();
    ctx.shared.delete(`bootstrap.api.${kind}`);
  }
}

/** Polls `fn` every `intervalMs` until it returns a value (not undefined) or `timeoutMs` passes. */
export async function waitFor<T>(fn: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 250): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() >= end) return undefined;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
