// `kubeprov status`, the Kubernetes side of a host: health of each component (from its own health
// endpoint on the host), the etcd members (from the local etcd, with the healthcheck client
// certificate) and the expiry of every certificate and kubeconfig (read from the host). Read-only.
import type { Host } from "../engine/task.js";
import type { HostStatus, StatusProbe } from "./probes.js";
import { parseKeyValues } from "./probes.js";
import { PKI_DIR, KUBERNETES_DIR, PORT_APISERVER, PORT_CONTROLLER_MANAGER, PORT_SCHEDULER, PORT_ETCD_CLIENT } from "../constants.js";
import { ETCD_METRICS_PORT } from "../tasks/controlplane-flags.js";
import { expirationReport, type ExpirationRow } from "../pki/expiration.js";
import { TransportStore } from "../tasks/certs-store.js";
import { clusterHasExternalEtcd, isEtcdHost } from "../plan/topology.js";
import type { Cluster } from "../spec/schema.js";

export interface ComponentHealth {
  /** "ok", or what the endpoint answered / why it could not be asked. */
  health: string;
  endpoint: string;
}

export interface EtcdMember {
  name: string;
  id: string;
  peerURLs: string[];
  clientURLs: string[];
  /** The member this host's etcd names as the leader. */
  leader?: boolean;
}

export interface HaStatus {
  virtualIP: string;
  /** keepalived put the virtual IP on this control plane. */
  holdsVIP: boolean;
  /** haproxy's health of each API server. */
  backends: Array<{ name: string; up: boolean }>;
}

/** Each component's own health endpoint, asked on the host itself (loopback). */
const ENDPOINTS: Array<{ component: string; url: string; tls: boolean; controlPlane: boolean }> = [
  { component: "kubelet", url: "http://127.0.0.1:10248/healthz", tls: false, controlPlane: false },
  { component: "etcd", url: `http://127.0.0.1:${ETCD_METRICS_PORT}/health`, tls: false, controlPlane: true },
  { component: "kube-apiserver", url: `https://127.0.0.1:${PORT_APISERVER}/livez`, tls: true, controlPlane: true },
  { component: "kube-controller-manager", url: `https://127.0.0.1:${PORT_CONTROLLER_MANAGER}/healthz`, tls: true, controlPlane: true },
  { component: "kube-scheduler", url: `https://127.0.0.1:${PORT_SCHEDULER}/livez`, tls: true, controlPlane: true },
];

/**
 * What a host runs, for status: a worker (kubelet), a control plane with stacked etcd (kubelet,
 * etcd and the control plane), a control plane with external etcd (no etcd), or an etcd host
 * (etcd only, no kubelet).
 */
export type HostKind = "worker" | "control-plane" | "control-plane-external-etcd" | "etcd";

function endpointsOf(kind: HostKind | boolean): typeof ENDPOINTS {
  const k: HostKind = kind === true ? "control-plane" : kind === false ? "worker" : kind;
  if (k === "etcd") return ENDPOINTS.filter((e) => e.component === "etcd");
  if (k === "worker") return ENDPOINTS.filter((e) => !e.controlPlane);
  if (k === "control-plane-external-etcd") return ENDPOINTS.filter((e) => e.component !== "etcd");
  return ENDPOINTS;
}

/** Whether the host has a local etcd member whose member list and leader status lists. */
const runsEtcd = (kind: HostKind | boolean) => kind === true || kind === "control-plane" || kind === "etcd";
const isControlPlaneKind = (kind: HostKind | boolean) => kind === true || kind === "control-plane" || kind === "control-plane-external-etcd";

const ETCD_CLIENT = `--cacert ${PKI_DIR}/etcd/ca.crt --cert ${PKI_DIR}/etcd/healthcheck-client.crt --key ${PKI_DIR}/etcd/healthcheck-client.key`;

function script(kind: HostKind): string {
  const lines = ["command -v curl >/dev/null 2>&1 || { echo nocurl=1; exit 0; }"];
  for (const e of endpointsOf(kind)) {
    // -k: the serving certificates of controller-manager and scheduler are self-signed; we only read health.
    lines.push(`printf '%s=%s\\n' ${e.component} "$(curl -s${e.tls ? "k" : ""} -m 3 ${e.url} 2>/dev/null | head -c 200 | tr '\\n' ' ' || true)"`);
  }
  if (isControlPlaneKind(kind)) {
    // HA (spec.ha): whether this control plane holds keepalived's VIP, and haproxy's view of each API server.
    lines.push(
      `if [ -s /etc/keepalived/keepalived.conf ]; then vip=$(sed -n '/virtual_ipaddress/{n;s/^ *\\([0-9a-f.:]*\\).*/\\1/p}' /etc/keepalived/keepalived.conf); ` +
        `printf 'ha.vip=%s\\n' "$vip"; if ip -o addr show 2>/dev/null | grep -q " $vip/"; then echo ha.holder=yes; else echo ha.holder=no; fi; fi`,
      `if [ -S /run/haproxy/admin.sock ] && command -v socat >/dev/null 2>&1; then printf 'ha.backends=%s\\n' "$(echo 'show servers state kube-apiservers' | socat -t 2 stdio unix-connect:/run/haproxy/admin.sock 2>/dev/null | awk '$2=="kube-apiservers"{printf "%s:%s ", $4, $6}')"; fi`,
    );
  }
  if (runsEtcd(kind)) {
    lines.push(
      `[ -f ${PKI_DIR}/etcd/healthcheck-client.key ] && printf 'etcd.members=%s\\n' "$(curl -s -m 3 ${ETCD_CLIENT} -X POST https://127.0.0.1:${PORT_ETCD_CLIENT}/v3/cluster/member/list -d '{}' 2>/dev/null | tr '\\n' ' ')"`,
      // The local member's view of who leads (its JSON gateway prints member IDs as decimal strings).
      `[ -f ${PKI_DIR}/etcd/healthcheck-client.key ] && printf 'etcd.status=%s\\n' "$(curl -s -m 3 ${ETCD_CLIENT} -X POST https://127.0.0.1:${PORT_ETCD_CLIENT}/v3/maintenance/status -d '{}' 2>/dev/null | tr '\\n' ' ')"`,
    );
  }
  return lines.join("\n");
}

/** Pure: the probe script's output → components and etcd members (`true`/`false`: a stacked control plane / a worker). */
export function parseKubernetesProbe(stdout: string, kind: HostKind | boolean): Partial<HostStatus> {
  const kv = parseKeyValues(stdout);
  if (kv.nocurl) return { components: { error: "curl is not installed on this host: component health not asked" } };
  const components: Record<string, ComponentHealth> = {};
  for (const e of endpointsOf(kind)) {
    const body = (kv[e.component] ?? "").trim();
    components[e.component] = { endpoint: e.url, health: body === "ok" || body.startsWith('{"health":"true"') ? "ok" : body ? body.slice(0, 120) : "no answer" };
  }
  const out: Partial<HostStatus> = { components };
  if (isControlPlaneKind(kind) && kv["ha.vip"] !== undefined) {
    // haproxy's srv_op_state: 2 is running (up); anything else is down or starting.
    const backends = (kv["ha.backends"] ?? "").trim().split(/\s+/).filter(Boolean).map((b) => {
      const [name, state] = b.split(":");
      return { name, up: state === "2" };
    });
    out.ha = { virtualIP: kv["ha.vip"], holdsVIP: kv["ha.holder"] === "yes", backends };
  }
  if (runsEtcd(kind) && kv["etcd.members"] !== undefined) {
    try {
      const doc = JSON.parse(kv["etcd.members"]) as { members?: Array<{ ID?: string; name?: string; peerURLs?: string[]; clientURLs?: string[] }> };
      let leader: string | undefined;
      try {
        leader = (JSON.parse(kv["etcd.status"] ?? "{}") as { leader?: string }).leader;
      } catch {
        leader = undefined;
      }
      out.etcdMembers = (doc.members ?? []).map<EtcdMember>((m) => ({
        id: m.ID ?? "",
        name: m.name ?? "",
        peerURLs: m.peerURLs ?? [],
        clientURLs: m.clientURLs ?? [],
        ...(leader !== undefined && m.ID === leader ? { leader: true } : {}),
      }));
    } catch {
      out.etcdMembers = { error: "etcd did not answer the member list" };
    }
  }
  return out;
}

/** Certificates and kubeconfigs with their expiry, as `certs check-expiration` reports them. */
async function certificates(host: Host): Promise<Partial<HostStatus>> {
  const report = await expirationReport(new TransportStore(host.transport), { certDir: PKI_DIR, kubeconfigDir: KUBERNETES_DIR });
  const present = (rows: ExpirationRow[]) => rows.filter((r) => !r.missing);
  const all = [...present(report.certificateAuthorities), ...present(report.certificates)];
  if (all.length === 0) return {};
  return { certificates: all.map((r) => ({ name: r.name, expires: r.expires, residualTime: r.residualTime, ...(r.error ? { error: r.error } : {}) })) };
}

/** The kind of a host in this cluster (external etcd when any host has role etcd). */
export function hostKind(cluster: Pick<Cluster, "spec">, host: Pick<Host, "roles">): HostKind {
  if (isEtcdHost(host)) return "etcd";
  if (!host.roles.includes("control-plane")) return "worker";
  return clusterHasExternalEtcd(cluster) ? "control-plane-external-etcd" : "control-plane";
}

/** The Kubernetes probe of a cluster's hosts: each host is asked what its kind runs. */
export function kubernetesProbeFor(cluster: Pick<Cluster, "spec">): StatusProbe {
  return {
    name: "kubernetes",
    async run(host: Host): Promise<Partial<HostStatus>> {
      const kind = hostKind(cluster, host);
      // An etcd host has no kubelet and no cluster CA: its etcd CA says etcd was set up there.
      const marker = kind === "etcd" ? `test -e ${PKI_DIR}/etcd/ca.crt` : `test -e ${KUBERNETES_DIR}/kubelet.conf -o -e ${PKI_DIR}/ca.crt`;
      const has = await host.transport.exec(`${marker} && echo yes || echo no`, { sudo: true, check: false });
      if (has.stdout.trim() !== "yes") return {};
      const [probe, certs] = await Promise.all([
        host.transport.exec(script(kind), { sudo: true, check: false, timeoutMs: 30_000 }),
        kind === "worker" ? Promise.resolve({}) : certificates(host),
      ]);
      return { ...parseKubernetesProbe(probe.stdout, kind), ...certs };
    },
  };
}

/** Text lines for the Kubernetes part of `kubeprov status` (under the hosts table). */
export function renderKubernetesText(statuses: HostStatus[]): string[] {
  const lines: string[] = [];
  for (const s of statuses) {
    const comps = s.components as Record<string, ComponentHealth> | { error: string } | undefined;
    if (!comps) continue;
    lines.push("", `${s.name}:`);
    if ("error" in comps && typeof comps.error === "string") lines.push(`  components: ${comps.error}`);
    else for (const [c, h] of Object.entries(comps as Record<string, ComponentHealth>)) lines.push(`  ${c.padEnd(24)} ${h.health}`);
    const members = s.etcdMembers as EtcdMember[] | { error: string } | undefined;
    if (Array.isArray(members)) lines.push(`  etcd members: ${members.map((m) => `${m.name} ${m.clientURLs.join(",")}${m.leader ? " (leader)" : ""}`).join("; ") || "none"}`);
    else if (members) lines.push(`  etcd members: ${members.error}`);
    const ha = s.ha as HaStatus | undefined;
    if (ha) {
      const backends = ha.backends.map((b) => `${b.name} ${b.up ? "up" : "DOWN"}`).join(", ") || "haproxy not answering";
      lines.push(`  ha: ${ha.holdsVIP ? `holds the virtual IP ${ha.virtualIP}` : `backup for ${ha.virtualIP}`}; haproxy backends: ${backends}`);
    }
    const certs = s.certificates as Array<{ name: string; expires?: string; residualTime?: string; error?: string }> | undefined;
    if (certs?.length) {
      const soonest = [...certs].filter((c) => c.expires).sort((a, b) => Date.parse(a.expires!) - Date.parse(b.expires!))[0];
      lines.push(`  certificates: ${certs.length}, first to expire: ${soonest ? `${soonest.name} ${soonest.expires} (${soonest.residualTime})` : "-"}`);
    }
  }
  return lines;
}
