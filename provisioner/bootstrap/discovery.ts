// Token discovery, as a node that knows only a join line finds its cluster (kubeadm's
// "discovery-token"):
//   1. read ConfigMap kube-public/cluster-info from the endpoint without trusting its TLS
//      certificate yet (anyone may read it; the API server's certificate is not known yet);
//   2. check its detached JWS signature `jws-kubeconfig-<token id>` with the token's secret:
//      whoever published it knows the token (the bootstrap signer signs with every valid token);
//   3. check that the CA certificate it carries hashes to one of the given
//      --discovery-token-ca-cert-hash values, so a forged endpoint cannot pass off its own CA;
//   4. from then on trust that CA only, and read what the cluster stores for joining nodes with
//      the token as bearer: kube-system/kubeprov-config (the cluster file).
// Nothing is written anywhere: a failure here leaves the joining machine as it was.
import { request as httpsRequest } from "node:https";
import { parse as parseYaml } from "yaml";
import { RuntimeFailure, UsageError } from "../errors.js";
import { PORT_APISERVER } from "../constants.js";
import { caCertHash } from "../pki/hash.js";
import { canonicalIP, splitHostPort } from "../pki/names.js";
import type { JoinTarget } from "../engine/task.js";
import { ApiClient, objectPath, type KubeObject } from "./api.js";
import { verifyDetachedJws } from "./jws.js";
import { CLUSTER_INFO, CONFIG_MAP_KEY, CONFIG_MAP_NAME, JWS_KEY_PREFIX } from "./manifests.js";
import { parseToken } from "./token.js";
import { hostSchema, type Cluster } from "../spec/schema.js";


const CLUSTER_INFO_PATH = objectPath("v1", "ConfigMap", CLUSTER_INFO, "kube-public");
const TIMEOUT_MS = 10_000;

/** What discovery found: where and what the cluster is, and its stored cluster file. */
export interface Discovered extends JoinTarget {
  /** kube-system/kubeprov-config's cluster file (YAML). */
  clusterText: string;
}

/** "host:port" (IPv6 in brackets) of a join line's endpoint; a UsageError naming the argument otherwise. Pure. */
export function parseEndpoint(text: string): { host: string; port: number; hostPort: string } {
  const bad = () => new UsageError(`join ENDPOINT ${JSON.stringify(text)}: give the API server as HOST:PORT (as \`kubeprov init\` prints it), e.g. 192.168.0.10:6443`);
  if (!text || /[\s/@]/.test(text)) throw bad();
  let parsed: { host: string; port: number };
  try {
    parsed = splitHostPort(text, PORT_APISERVER);
  } catch {
    throw bad();
  }
  if (!parsed.host || !Number.isInteger(parsed.port) || parsed.port < 1 || parsed.port > 65535) throw bad();
  const host = parsed.host.replace(/^\[|\]$/g, "");
  return { host, port: parsed.port, hostPort: `${host.includes(":") ? `[${host}]` : host}:${parsed.port}` };
}

/** "sha256:<64 hex>" values of --discovery-token-ca-cert-hash; a UsageError naming the bad one. Pure. */
export function parseCaHashes(values: string[]): string[] {
  if (!values.length) throw new UsageError("join ENDPOINT needs --discovery-token-ca-cert-hash sha256:<hex> (printed by `kubeprov init` and `kubeprov token create --print-join-command`): it is how this machine knows the endpoint is your cluster");
  return values.map((v) => {
    const m = /^sha256:([0-9a-fA-F]{64})$/.exec(v.trim());
    if (!m) throw new UsageError(`--discovery-token-ca-cert-hash ${JSON.stringify(v)}: expected sha256: followed by 64 hexadecimal characters`);
    return `sha256:${m[1]!.toLowerCase()}`;
  });
}

/** The CA and server of a cluster-info ConfigMap once its signature and CA hash are checked. Pure; UsageError on a mismatch. */
export function verifyClusterInfo(cm: { data?: Record<string, string> } | undefined, token: string, caHashes: string[], endpoint: string): { server: string; ca: Buffer } {
  const t = parseToken(token);
  if (!t) throw new UsageError("--token: a bootstrap token looks like [a-z0-9]{6}.[a-z0-9]{16}");
  const kubeconfig = cm?.data?.kubeconfig;
  if (!kubeconfig) throw new UsageError(`${endpoint} has no kube-public/cluster-info with a kubeconfig: is it a Kubernetes API server that init set up?`);
  const jws = cm.data?.[`${JWS_KEY_PREFIX}${t.id}`];
  if (!jws) throw new UsageError(`cluster-info at ${endpoint} is not signed for token ${t.id}: the token does not exist there or has expired (create one: kubeprov token create)`);
  if (!verifyDetachedJws(jws, kubeconfig, token)) throw new UsageError(`cluster-info at ${endpoint} has a signature for token ${t.id} that this token's secret does not match: a wrong token`);
  let cluster: Record<string, string> | undefined;
  try {
    cluster = (parseYaml(kubeconfig) as { clusters?: { cluster?: Record<string, string> }[] })?.clusters?.[0]?.cluster;
  } catch {
    cluster = undefined;
  }
  const caData = cluster?.["certificate-authority-data"];
  if (!cluster?.server || !caData) throw new UsageError(`cluster-info at ${endpoint} names no server or CA certificate`);
  const ca = Buffer.from(caData, "base64");
  let hash: string;
  try {
    hash = caCertHash(ca);
  } catch (e) {
    throw new UsageError(`cluster-info at ${endpoint}: its CA certificate cannot be read (${(e as Error).message})`);
  }
  if (!caHashes.includes(hash))
    throw new UsageError(`the cluster at ${endpoint} has CA ${hash}, not the --discovery-token-ca-cert-hash given (${caHashes.join(", ")}): this is not the cluster the join line is for, or the hash is mistyped`);
  return { server: cluster.server, ca };
}

/** GET over TLS without checking the server's certificate: only for cluster-info, whose content is checked above instead. */
function getUnverified(hostPort: { host: string; port: number }, path: string): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      { hostname: hostPort.host, port: hostPort.port, path, method: "GET", rejectUnauthorized: false, timeout: TIMEOUT_MS, headers: { accept: "application/json", "user-agent": "kubeprov" } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }));
        res.on("error", reject);
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
    req.on("error", reject);
    req.end();
  });
}

/** Token discovery against `endpoint` (steps at the top). UsageError for what the join line got wrong, RuntimeFailure when the cluster cannot be reached. */
export async function discoverCluster(opts: { endpoint: string; token: string; caHashes: string[] }): Promise<Discovered> {
  const ep = parseEndpoint(opts.endpoint);
  let info: { status: number; text: string };
  try {
    info = await getUnverified(ep, CLUSTER_INFO_PATH);
  } catch (e) {
    throw new RuntimeFailure(`cannot reach the API server at ${ep.hostPort}: ${(e as Error).message}`);
  }
  if (info.status !== 200) throw new RuntimeFailure(`GET cluster-info from ${ep.hostPort}: ${info.status} ${info.text.slice(0, 200)}`);
  let cm: { data?: Record<string, string> } | undefined;
  try {
    cm = JSON.parse(info.text) as typeof cm;
  } catch {
    throw new RuntimeFailure(`${ep.hostPort} answered cluster-info with something that is not JSON`);
  }
  const { server, ca } = verifyClusterInfo(cm, opts.token, opts.caHashes, ep.hostPort);
  const client = new ApiClient(ep.hostPort, { server, ca, token: opts.token }, TIMEOUT_MS);
  try {
    const stored = await client.get<KubeObject & { data?: Record<string, string> }>(objectPath("v1", "ConfigMap", CONFIG_MAP_NAME, "kube-system"));
    const clusterText = stored?.data?.[CONFIG_MAP_KEY];
    if (!clusterText) throw new RuntimeFailure(`the cluster at ${server} has no kube-system/${CONFIG_MAP_NAME}: it was not made by kubeprov (join it with kubeadm join)`);
    return { server, ca, token: opts.token, clusterText };
  } catch (e) {
    if (e instanceof RuntimeFailure) throw e;
    throw new RuntimeFailure(`reading kube-system/${CONFIG_MAP_NAME} from ${server} with the token: ${(e as Error).message}`);
  } finally {
    client.close();
  }
}

/** The machine `kubeprov join ENDPOINT` runs on, as a host of the cluster it joins. */
export interface JoiningHost {
  name: string;
  address: string;
  controlPlane: boolean;
}

/**
 * The cluster a node-local join works on: the cluster file the cluster stores, with this machine
 * as a host of it (connection local), last in file order. A host of the stored file with this
 * name is this machine only if it has this address (a join run again, or a machine the file
 * already lists); a name or address another host has is refused. Pure.
 */
export function clusterWithJoiningHost(cluster: Cluster, self: JoiningHost): Cluster {
  const addressOf = (h: Cluster["spec"]["hosts"][number]) => h.internalAddress ?? h.address;
  const same = (a: string, b: string) => (canonicalIP(a) ?? a) === (canonicalIP(b) ?? b);
  const named = cluster.spec.hosts.find((h) => h.name === self.name);
  if (named && !same(addressOf(named), self.address))
    throw new UsageError(`the cluster already has a host named ${self.name} at ${addressOf(named)}; this machine is at ${self.address}: give it another name with --node-name`);
  const clash = cluster.spec.hosts.find((h) => h.name !== self.name && same(addressOf(h), self.address));
  if (clash) throw new UsageError(`the cluster's host ${clash.name} has this machine's address ${self.address}: give the address this machine is reached at with --apiserver-advertise-address`);
  if (self.controlPlane && cluster.spec.hosts.some((h) => (h.roles as readonly string[]).includes("etcd")))
    throw new UsageError("this cluster's etcd runs on hosts of its own (role etcd): a control plane joins it from a machine with the cluster file (kubeprov join -f FILE), which reaches the etcd hosts");
  const host = hostSchema.parse({ name: self.name, address: self.address, roles: [self.controlPlane ? "control-plane" : "worker"], connection: "local" });
  return { ...cluster, spec: { ...cluster.spec, hosts: [...cluster.spec.hosts.filter((h) => h.name !== self.name), host] } };
}
