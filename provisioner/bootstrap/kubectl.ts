// The API reached through the bundle's kubectl on the first control plane, over the host's
// transport: for hosts kubeprov reaches only over SSH (the API server's port is not open to the
// machine kubeprov runs on). Request bodies (which may hold a token) go on stdin, never in the
// command line; paths and names are kubeprov's own. Slower than HTTPS from here (one kubectl
// process per request), so only used when the direct way cannot connect.
import { BIN_DIR } from "../constants.js";
import type { Host } from "../engine/task.js";
import { shq } from "../transport/transport.js";
import { ApiError, FIELD_MANAGER, objectPath, type ApiResponse, type KubeApi, type KubeObject } from "./api.js";

const KUBECTL = `${BIN_DIR}/kubectl`;

/** The status an error from kubectl stands for ("Error from server (NotFound): ..."). */
export function statusOfKubectlError(stderr: string): number {
  const m = /Error from server \((\w+)\)/.exec(stderr);
  switch (m?.[1]) {
    case "NotFound":
      return 404;
    case "AlreadyExists":
    case "Conflict":
      return 409;
    case "Forbidden":
      return 403;
    case "Unauthorized":
      return 401;
    case "BadRequest":
    case "Invalid":
      return 422;
    default:
      return 500;
  }
}

/** "/api/v1/namespaces/NS/PLURAL/NAME" → kubectl's resource.group, name and namespace. */
export function kubectlTarget(path: string): { resource: string; name: string; namespace?: string } {
  const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)(?:\/namespaces\/([^/]+))?\/([^/]+)\/([^/?]+)$/.exec(path);
  if (!m) throw new Error(`not an object path: ${path}`);
  const [, group, namespace, plural, name] = m;
  return { resource: group ? `${plural}.${group}` : plural, name: decodeURIComponent(name), ...(namespace ? { namespace: decodeURIComponent(namespace) } : {}) };
}

export class KubectlApi implements KubeApi {
  readonly via = "kubectl" as const;
  readonly hostName: string;

  constructor(
    private readonly host: Host,
    private readonly kubeconfig: string,
  ) {
    this.hostName = host.name;
  }

  private async run(args: string, stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
    const cmd = `${KUBECTL} --kubeconfig=${shq(this.kubeconfig)} --request-timeout=15s ${args}`;
    return this.host.transport.exec(cmd, { sudo: true, check: false, timeoutMs: 30_000, ...(stdin !== undefined ? { stdin } : {}) });
  }

  private fail(method: string, path: string, r: { stderr: string; stdout: string }): never {
    const text = (r.stderr.trim() || r.stdout.trim()).split("\n").slice(-3).join(" ");
    throw new ApiError(this.hostName, method, path, statusOfKubectlError(r.stderr), `(kubectl on ${this.hostName}) ${text}`);
  }

  async get<T = KubeObject>(path: string): Promise<T | undefined> {
    const r = await this.run(`get --raw ${shq(path)}`);
    if (r.code === 0) return JSON.parse(r.stdout) as T;
    if (statusOfKubectlError(r.stderr) === 404) return undefined;
    this.fail("GET", path, r);
  }

  async list<T = KubeObject>(path: string): Promise<T[]> {
    return (await this.get<{ items?: T[] }>(path))?.items ?? [];
  }

  async create(obj: KubeObject): Promise<boolean> {
    const path = objectPath(obj.apiVersion, obj.kind, "", obj.metadata.namespace);
    const r = await this.run(`create --raw ${shq(path)} -f -`, JSON.stringify(obj));
    if (r.code === 0) return true;
    if (statusOfKubectlError(r.stderr) === 409) return false;
    this.fail("POST", path, r);
  }

  async apply(obj: KubeObject): Promise<KubeObject> {
    const r = await this.run(`apply --server-side --force-conflicts --field-manager=${FIELD_MANAGER} -o json -f -`, JSON.stringify(obj));
    if (r.code !== 0) this.fail("APPLY", objectPath(obj.apiVersion, obj.kind, obj.metadata.name, obj.metadata.namespace), r);
    return JSON.parse(r.stdout) as KubeObject;
  }

  async mergePatch(path: string, patch: unknown): Promise<ApiResponse> {
    const t = kubectlTarget(path);
    const ns = t.namespace ? ` -n ${shq(t.namespace)}` : "";
    const r = await this.run(`patch ${shq(t.resource)} ${shq(t.name)}${ns} --type=merge --patch-file=/dev/stdin -o json`, JSON.stringify(patch));
    return r.code === 0 ? { status: 200, text: r.stdout } : { status: statusOfKubectlError(r.stderr), text: r.stderr };
  }

  async delete(path: string): Promise<boolean> {
    const r = await this.run(`delete --raw ${shq(path)}`);
    if (r.code === 0) return true;
    if (statusOfKubectlError(r.stderr) === 404) return false;
    this.fail("DELETE", path, r);
  }

  close(): void {}
}
