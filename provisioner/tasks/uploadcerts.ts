// Phases "upload-certs" (init --upload-certs) and "download-certs" (join --certificate-key): the
// shared CAs and keys travel through the Secret kube-system/kubeadm-certs, sealed under the
// certificate key (format: bootstrap/copycerts.ts), instead of being copied from the first control
// plane. The key reaches kubeprov through --certificate-key or KUBEPROV_CERTIFICATE_KEY and stays in
// memory: it is never put in a command line, a log event or an error message.
import { HostError } from "../errors.js";
import type { ApplyResult, CheckResult, Host, RunContext, Task } from "../engine/task.js";
import { ApiClient, apiClient, objectPath, objectsToApply, type KubeApi, type KubeObject } from "../bootstrap/api.js";
import {
  CERTS_SECRET,
  certsOwnerTokenSecret,
  certsRbacObjects,
  certsSecret,
  DecryptError,
  openCertsSecret,
  requireCertificateKey,
} from "../bootstrap/copycerts.js";
import { BOOTSTRAP_TOKEN_SECRET_PREFIX, formatToken, generateToken, requireToken } from "../bootstrap/token.js";
import { sharedRelPaths, type SharedCaSet } from "../pki/plan.js";
import { firstControlPlane, joiningControlPlanes } from "../plan/topology.js";
import { clusterCa, hostPkiContext } from "./certs.js";
import { TransportStore } from "./certs-store.js";
import { listTokens, pickJoinToken } from "./bootstrap.js";
import { joinServer } from "./join.js";

export const UPLOAD_CERTS_TASK = "upload-certs/secret";
export const DOWNLOAD_CERTS_TASK = "download-certs/secret";
const SECRET_PATH = objectPath("v1", "Secret", CERTS_SECRET, "kube-system");
const DOWNLOADED = "copycerts.downloaded";

/** The run's certificate key (validated), or undefined when the run has none. */
export function certificateKeyOf(ctx: RunContext): Buffer | undefined {
  const k = ctx.options.certificateKey;
  return typeof k === "string" && k !== "" ? requireCertificateKey(k) : undefined;
}

/** The shared material as it is on `host` (the first control plane's cert dir), by relative path. */
export async function readCaSetFrom(host: Host, ctx: RunContext): Promise<SharedCaSet> {
  const certDir = hostPkiContext(host, ctx).certDir;
  const set: SharedCaSet = new Map();
  // One command for all of them (the certs tasks' batch read); a file that cannot be read fails the run.
  const read = await new TransportStore(host.transport).readMany(sharedRelPaths().map((rel) => `${certDir}/${rel}`));
  for (const rel of sharedRelPaths()) {
    const data = read.get(`${certDir}/${rel}`);
    if (data instanceof Error) throw new HostError(host.name, undefined, `${certDir}/${rel} ${data.message}`);
    if (data) set.set(rel, data);
  }
  return set;
}

type SecretObject = KubeObject & { data?: Record<string, string>; metadata: KubeObject["metadata"] & { ownerReferences?: { name: string; uid: string }[] } };

/** Why the Secret must be uploaded again, or undefined when it holds `files` under `key`, its owner token lives and the RBAC is there. */
async function uploadNeeded(api: KubeApi, files: SharedCaSet, key: Buffer): Promise<string | undefined> {
  const have = await api.get<SecretObject>(SECRET_PATH);
  if (!have) return `create Secret kube-system/${CERTS_SECRET}`;
  let opened: SharedCaSet;
  try {
    opened = openCertsSecret(have, key, [...files.keys()]);
  } catch {
    return `Secret kube-system/${CERTS_SECRET} is sealed under another key`;
  }
  if ([...files].some(([rel, data]) => !opened.get(rel)?.equals(data))) return `Secret kube-system/${CERTS_SECRET} holds other files`;
  const owner = have.metadata.ownerReferences?.[0];
  const token = owner && (await api.get<KubeObject>(objectPath("v1", "Secret", owner.name, "kube-system")));
  if (!token || (token.metadata as { uid?: string }).uid !== owner!.uid) return `the token that owns Secret kube-system/${CERTS_SECRET} is gone`;
  const rbac = await objectsToApply(api, certsRbacObjects());
  return rbac.length ? rbac.map((r) => r.why).join(", ") : undefined;
}

/** init --upload-certs: the shared CAs and keys sealed into kube-system/kubeadm-certs, owned by a 2 h token; the Role that lets joining nodes read it. */
export function uploadCertsTask(opts: { after?: string[] } = {}): Task {
  return {
    name: UPLOAD_CERTS_TASK,
    phase: "upload-certs",
    description: `the shared CAs and keys sealed under the certificate key in Secret kube-system/${CERTS_SECRET} (deleted with its 2 h token)`,
    hosts: (ctx) => (ctx.options.uploadCerts && certificateKeyOf(ctx) ? [firstControlPlane(ctx)] : []),
    ...(opts.after?.length ? { after: opts.after } : {}),
    async check(host, ctx): Promise<CheckResult> {
      const files = await readCaSetFrom(host, ctx);
      if (!files.has("ca.key")) return { needed: true, reason: `upload the CAs once the certs phase made them` };
      const why = await uploadNeeded(await apiClient(ctx), files, certificateKeyOf(ctx)!);
      return why ? { needed: true, reason: why } : { needed: false, reason: `Secret kube-system/${CERTS_SECRET} holds the shared CAs and keys under this key` };
    },
    async apply(host, ctx): Promise<ApplyResult> {
      const files = await readCaSetFrom(host, ctx);
      if (!files.has("ca.key")) throw new HostError(host.name, UPLOAD_CERTS_TASK, `no CA key under ${hostPkiContext(host, ctx).certDir}: the certs phase has not run here`);
      const api = await apiClient(ctx);
      const token = generateToken();
      const tokenPath = objectPath("v1", "Secret", `${BOOTSTRAP_TOKEN_SECRET_PREFIX}${token.id}`, "kube-system");
      await api.apply(certsOwnerTokenSecret(token));
      const uid = ((await api.get<KubeObject>(tokenPath))?.metadata as { uid?: string } | undefined)?.uid;
      if (!uid) throw new HostError(host.name, UPLOAD_CERTS_TASK, `the token Secret ${BOOTSTRAP_TOKEN_SECRET_PREFIX}${token.id} vanished right after it was created`);
      await api.apply(certsSecret(files, certificateKeyOf(ctx)!, { tokenId: token.id, uid }));
      for (const o of certsRbacObjects()) await api.apply(o);
      return { detail: `Secret kube-system/${CERTS_SECRET} (${files.size} files) owned by token ${token.id}, which expires in 2 h` };
    },
  };
}

/** The bootstrap token a joining control plane reads kubeadm-certs with: --token, else a usable one of the cluster. */
async function joinToken(ctx: RunContext, host: Host): Promise<string> {
  if (ctx.joinTo) return ctx.joinTo.token;
  if (typeof ctx.options.token === "string" && ctx.options.token) return formatToken(requireToken(ctx.options.token));
  const t = pickJoinToken(await listTokens(await apiClient(ctx)), new Date(), 0);
  if (!t) throw new HostError(host.name, DOWNLOAD_CERTS_TASK, "no usable bootstrap token in the cluster to read the certificates with", "give one with --token (kubeprov token create)");
  return formatToken(t);
}

/**
 * The shared material from kube-system/kubeadm-certs, read as a joining node does (authenticated
 * by a bootstrap token, trusting the cluster CA certificate) and opened with the certificate key.
 * Once per run. Throws HostError: Secret missing (expired), or a key that does not open it.
 */
export function downloadedCaSet(ctx: RunContext, host: Host): Promise<SharedCaSet> {
  let p = ctx.shared.get(DOWNLOADED) as Promise<SharedCaSet> | undefined;
  if (!p) {
    p = (async () => {
      const key = certificateKeyOf(ctx)!;
      // The CA certificate is public: it only tells this client which API server to trust.
      const ca = await clusterCa(ctx);
      const client = new ApiClient(host.name, { server: joinServer(ctx), ca, token: await joinToken(ctx, host) });
      try {
        const secret = await client.get<SecretObject>(SECRET_PATH);
        if (!secret)
          throw new HostError(host.name, DOWNLOAD_CERTS_TASK, `Secret kube-system/${CERTS_SECRET} not found: it is deleted 2 h after upload`, "upload it again: kubeprov init phase upload-certs --upload-certs (prints a new key)");
        try {
          return openCertsSecret(secret, key, sharedRelPaths());
        } catch (e) {
          if (e instanceof DecryptError)
            throw new HostError(host.name, DOWNLOAD_CERTS_TASK, `the certificate key does not open Secret kube-system/${CERTS_SECRET} (a wrong key, or the Secret was uploaded again under a new one); nothing was written`);
          throw new HostError(host.name, DOWNLOAD_CERTS_TASK, (e as Error).message);
        }
      } finally {
        client.close();
      }
    })();
    ctx.shared.set(DOWNLOADED, p);
  }
  return p;
}

/** join --certificate-key: reads and opens kubeadm-certs before anything is changed on a joining control plane. */
export function downloadCertsTask(opts: { after?: string[] } = {}): Task {
  return {
    name: DOWNLOAD_CERTS_TASK,
    phase: "download-certs",
    description: `the shared CAs and keys from Secret kube-system/${CERTS_SECRET}, opened with the certificate key`,
    hosts: (ctx) => (certificateKeyOf(ctx) ? joiningControlPlanes(ctx) : []),
    ...(opts.after?.length ? { after: opts.after } : {}),
    readOnly: true,
    async check() {
      return { needed: true, reason: `read Secret kube-system/${CERTS_SECRET} with a bootstrap token and open it` };
    },
    async apply(host, ctx) {
      const set = await downloadedCaSet(ctx, host);
      return { detail: `${set.size} files opened` };
    },
  };
}
