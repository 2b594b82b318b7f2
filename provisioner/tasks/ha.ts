// Phase "ha": the seeds' multi-master layout, on every control plane. haproxy listens on the
// endpoint's port and spreads connections over every kube-apiserver (TLS health check of /readyz);
// keepalived holds the virtual IP on one control plane (VRRP v3, unicast peers, a check script on
// the local haproxy and API server) and moves it within about a second when that one fails; with
// spec.ha.authentication it speaks VRRP v2 with a password instead, and moves it in about 3-4 s.
// Then ha/endpoint waits until the API answers through the VIP, before anything uses it.
import { PORT_APISERVER } from "../constants.js";
import { ConfigError, HostError } from "../errors.js";
import type { CheckResult, Host, RunContext, Task } from "../engine/task.js";
import { renderTemplate } from "../render.js";
import type { Cluster } from "../spec/schema.js";
import { readVrrpPassword } from "../spec/vrrp-password.js";
import { controlPlaneAddresses } from "../plan/topology.js";
import { shq } from "../transport/transport.js";
import { installCommands } from "./prepare.js";
import { serviceTask, type ServiceFile } from "./service.js";

export const HAPROXY_CONFIG = "/etc/haproxy/haproxy.cfg";
export const KEEPALIVED_CONFIG = "/etc/keepalived/keepalived.conf";
export const KEEPALIVED_CHECK_SCRIPT = "/etc/keepalived/kubeprov-check-apiserver.sh";
export const HA_PACKAGES_TASK = "ha/packages";
export const HAPROXY_TASK = "ha/haproxy";
export const KEEPALIVED_TASK = "ha/keepalived";
export const HA_ENDPOINT_TASK = "ha/endpoint";
/** haproxy's health-check interval and failures before a backend leaves the pool (≤ 1 s). */
export const HAPROXY_CHECK_INTER = "400ms";
export const HAPROXY_CHECK_FALL = 2;
/** How long the API may take to answer through the VIP once the first control plane is ready. */
export const ENDPOINT_WAIT_MS = 60_000;

export const haEnabled = (cluster: Cluster): boolean => cluster.spec.ha.enabled;

/** The control planes that run haproxy and keepalived (none when HA is off). */
const haHosts = (scope: (ctx: RunContext) => Host[]) => (ctx: RunContext) => (haEnabled(ctx.cluster) ? scope(ctx) : []);

/** haproxy.cfg: every control plane of the file as a backend, in file order. Pure. */
export function renderHaproxyConfig(cluster: Cluster, cps: Array<Pick<Host, "name" | "nodeIP">>): string {
  const servers = cps.map((h) => `    server ${h.name} ${h.nodeIP.includes(":") ? `[${h.nodeIP}]` : h.nodeIP}:${PORT_APISERVER}`).join("\n");
  return renderTemplate("ha/haproxy.cfg", { bind: "*", port: cluster.spec.ha.haproxyPort, inter: HAPROXY_CHECK_INTER, fall: HAPROXY_CHECK_FALL, servers });
}

/**
 * keepalived.conf's authentication block (after advert_int), or nothing. VRRP v3 has no
 * authentication, so a password means VRRP v2 (vrrp_version in global_defs).
 */
function keepalivedAuthentication(type: string, password: string): string {
  return ["", "    # VRRP v2 (v3 has no authentication): adverts carry this password and whole seconds.", "    authentication {", `        auth_type ${type}`, `        auth_pass ${password}`, "    }"].join("\n");
}

/**
 * keepalived.conf for one control plane: the others are its unicast peers. Pure. `password` is the
 * content of spec.ha.authentication.passwordFile (read by the caller), when authentication is on.
 */
export function renderKeepalivedConfig(cluster: Cluster, host: Pick<Host, "name" | "nodeIP">, cps: Array<Pick<Host, "name" | "nodeIP">>, password?: string): string {
  const ha = cluster.spec.ha;
  const index = Math.max(0, cps.findIndex((h) => h.name === host.name));
  const auth = ha.authentication;
  if (auth && password === undefined) throw new Error("keepalived.conf with authentication needs the password");
  return renderTemplate("ha/keepalived.conf", {
    vrrpVersion: auth ? 2 : 3,
    authentication: auth ? keepalivedAuthentication(auth.type, password!) : "",
    routerId: host.name,
    cluster: cluster.metadata.name.replace(/-/g, "_"),
    checkScript: KEEPALIVED_CHECK_SCRIPT,
    interface: ha.interface,
    virtualRouterId: ha.virtualRouterId,
    // File order decides who takes the VIP first when several are ready at once.
    priority: Math.max(1, 150 - index),
    advertInterval: ha.advertInterval,
    self: host.nodeIP,
    peers: cps.filter((h) => h.name !== host.name).map((h) => `        ${h.nodeIP}`).join("\n") || "        # (no other control plane yet)",
    vip: ha.virtualIP ?? "",
  });
}

/** The VRRP password from spec.ha.authentication.passwordFile (checked again: it may have changed since the file was loaded). */
function vrrpPassword(ctx: RunContext): string | undefined {
  const auth = ctx.cluster.spec.ha.authentication;
  if (!auth) return undefined;
  const r = readVrrpPassword(auth.passwordFile, ctx.source);
  if ("problem" in r) throw new ConfigError(`${ctx.source}: spec.ha.authentication.passwordFile: ${r.problem}`);
  return r.password;
}

/** The files of keepalived on one control plane, with their modes. */
export function keepalivedFiles(host: Host, ctx: RunContext): ServiceFile[] {
  return [
    { path: KEEPALIVED_CHECK_SCRIPT, content: renderCheckScript(ctx.cluster), mode: 0o755 },
    // With authentication the file holds the password: root only. Without, 0644 as before.
    { path: KEEPALIVED_CONFIG, content: renderKeepalivedConfig(ctx.cluster, host, controlPlaneAddresses(ctx), vrrpPassword(ctx)), mode: ctx.cluster.spec.ha.authentication ? 0o600 : 0o644 },
  ];
}

export function renderCheckScript(cluster: Cluster): string {
  return renderTemplate("ha/check-apiserver.sh", { haproxyPort: cluster.spec.ha.haproxyPort, apiserverPort: PORT_APISERVER });
}

/** haproxy and keepalived installed (they are in the docker driver's node image already). */
function packagesTask(hosts: (ctx: RunContext) => Host[], after: string[]): Task {
  const probe = "for b in haproxy keepalived; do command -v $b >/dev/null 2>&1 || echo $b; done";
  return {
    name: HA_PACKAGES_TASK,
    phase: "ha",
    description: "haproxy and keepalived installed",
    hosts,
    after,
    async check(host): Promise<CheckResult> {
      const missing = (await host.transport.exec(probe, { sudo: true })).stdout.trim().split("\n").filter(Boolean);
      return missing.length ? { needed: true, reason: `install ${missing.join(", ")}` } : { needed: false, reason: "haproxy and keepalived installed" };
    },
    async apply(host) {
      const f = host.facts;
      if (!f) throw new HostError(host.name, HA_PACKAGES_TASK, "no facts about this host");
      await host.transport.exec(installCommands(f.packageManager, f.os.id, "ha").join(" && "), { sudo: true, timeoutMs: 600_000 });
    },
  };
}

/** The API answers /readyz through the VIP and haproxy (probed from the first control plane). */
function endpointTask(hosts: (ctx: RunContext) => Host[], after: string[]): Task {
  const url = (ctx: RunContext) => `https://${ctx.cluster.spec.ha.virtualIP}:${ctx.cluster.spec.ha.haproxyPort}/readyz`;
  const probe = async (host: Host, ctx: RunContext) =>
    (await host.transport.exec(`curl -sk --max-time 2 ${shq(url(ctx))} || true`, { sudo: true, check: false, timeoutMs: 10_000 })).stdout.trim();
  return {
    name: HA_ENDPOINT_TASK,
    phase: "ha",
    description: "the API answers through the virtual IP and haproxy",
    waitsFor: "keepalived taking the virtual IP and haproxy's health checks of the API servers",
    hosts,
    after,
    async check(host, ctx) {
      const body = await probe(host, ctx);
      return body === "ok" ? { needed: false, reason: `${url(ctx)} ok` } : { needed: true, reason: `wait for ${url(ctx)}` };
    },
    async apply(host, ctx) {
      const t0 = Date.now();
      let body = "";
      while (Date.now() - t0 < ENDPOINT_WAIT_MS) {
        body = await probe(host, ctx);
        if (body === "ok") return { detail: `${url(ctx)} ok after ${((Date.now() - t0) / 1000).toFixed(1)} s` };
        await new Promise((r) => setTimeout(r, 250));
      }
      const state = await host.transport.exec("systemctl is-active haproxy keepalived; journalctl -u keepalived -n 15 --no-pager -o cat", { sudo: true, check: false });
      throw new HostError(host.name, HA_ENDPOINT_TASK, `the API does not answer through ${url(ctx)} after ${ENDPOINT_WAIT_MS / 1000} s (last answer: ${body || "none"})`, state.stdout.trim());
    },
  };
}

export interface HaTaskOptions {
  /** The control planes of this run (haproxy and keepalived go on each). */
  hosts: (ctx: RunContext) => Host[];
  /** What haproxy and keepalived wait for (prepare). */
  after: string[];
  /** Where ha/endpoint probes from, and what it waits for (the first control plane's API). */
  endpoint?: { hosts: (ctx: RunContext) => Host[]; after: string[] };
}

export function haTasks(opts: HaTaskOptions): Task[] {
  const hosts = haHosts(opts.hosts);
  const packages = packagesTask(hosts, opts.after);
  const tasks: Task[] = [
    packages,
    serviceTask({
      name: HAPROXY_TASK,
      phase: "ha",
      description: `haproxy on the endpoint port in front of every kube-apiserver (${HAPROXY_CONFIG})`,
      unit: "haproxy",
      hosts,
      after: [packages.name],
      reload: true,
      files: (_host, ctx) => [{ path: HAPROXY_CONFIG, content: renderHaproxyConfig(ctx.cluster, controlPlaneAddresses(ctx)), mode: 0o644 }],
    }),
    serviceTask({
      name: KEEPALIVED_TASK,
      phase: "ha",
      description: `keepalived holding the virtual IP (${KEEPALIVED_CONFIG})`,
      unit: "keepalived",
      hosts,
      after: [packages.name],
      reload: true,
      files: keepalivedFiles,
    }),
  ];
  if (opts.endpoint) tasks.push(endpointTask(haHosts(opts.endpoint.hosts), [...opts.endpoint.after, HAPROXY_TASK, KEEPALIVED_TASK]));
  return tasks;
}
