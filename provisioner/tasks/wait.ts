// Phase "wait-control-plane": the API server on the first control plane answers /readyz "ok".
// Bounded: a component that keeps restarting fails the task early, and everything fails by the
// deadline; the failure names the component(s), shows their log tails and any known cause.
import { performance } from "node:perf_hooks";
import { request } from "node:https";
import { parse as parseYaml } from "yaml";
import { BIN_DIR, KUBERNETES_DIR, MANIFESTS_DIR, PORT_APISERVER, PORT_CONTROLLER_MANAGER, PORT_SCHEDULER } from "../constants.js";
import { HostError, lastLines } from "../errors.js";
import { shq } from "../transport/transport.js";
import type { CheckResult, Host, RunContext, Task } from "../engine/task.js";
import { ALL_COMPONENTS, CONTROL_PLANE_COMPONENTS, urlHost, type ComponentName } from "./controlplane-flags.js";
import { hasExternalEtcd } from "../plan/topology.js";
import { matchKnownCauses } from "./diagnose.js";
import { changedComponents } from "./controlplane.js";

export const WAIT_CONTROL_PLANE_TASK = "wait-control-plane/readyz";
export const ADMIN_CONF = `${KUBERNETES_DIR}/admin.conf`;
/** The whole wait, unless ctx.options.waitTimeoutMs says otherwise. */
export const WAIT_CONTROL_PLANE_MS = 100_000;
/** A component restarted this many times while /readyz is not ok: fail now, do not wait longer. */
export const RESTARTS_BEFORE_FAILING = 2;

export interface ComponentStatus {
  component: ComponentName | "kubelet";
  /** Containers started so far (static pods), or restarts + 1 (units); 0: never started. */
  attempts: number;
  running: boolean;
  /** Last lines of its log. */
  log: string;
}

/** /readyz through the node's kubectl (with admin.conf), falling back to an HTTPS request from here. */
export async function readyz(host: Host, ctx: RunContext): Promise<{ ok: boolean; body: string }> {
  const kubectl = await host.transport.exec(
    // This host's own API server, not the endpoint admin.conf names (a VIP, a load balancer).
    `if [ -x ${BIN_DIR}/kubectl ]; then ${BIN_DIR}/kubectl --kubeconfig=${ADMIN_CONF} --server=https://${urlHost(host.nodeIP)}:${PORT_APISERVER} --request-timeout=3s get --raw=/readyz 2>&1; else echo @@no-kubectl@@; exit 3; fi`,
    { sudo: true, check: false, timeoutMs: 10_000 },
  );
  if (!kubectl.stdout.includes("@@no-kubectl@@")) return { ok: kubectl.code === 0 && kubectl.stdout.trim() === "ok", body: kubectl.stdout.trim() };
  return readyzFromHere(host, ctx);
}

async function readyzFromHere(host: Host, ctx: RunContext): Promise<{ ok: boolean; body: string }> {
  const key = `wait/admin-conf/${host.name}`;
  let creds = ctx.shared.get(key) as { ca: Buffer; cert: Buffer; key: Buffer } | undefined;
  if (!creds) {
    const text = (await host.transport.readFile(ADMIN_CONF))?.toString("utf8");
    if (!text) return { ok: false, body: `${ADMIN_CONF} missing` };
    const kc = parseYaml(text) as { clusters: Array<{ cluster: Record<string, string> }>; users: Array<{ user: Record<string, string> }> };
    const b64 = (s: string | undefined) => Buffer.from(s ?? "", "base64");
    creds = {
      ca: b64(kc.clusters[0]?.cluster["certificate-authority-data"]),
      cert: b64(kc.users[0]?.user["client-certificate-data"]),
      key: b64(kc.users[0]?.user["client-key-data"]),
    };
    ctx.shared.set(key, creds);
  }
  return new Promise((resolve) => {
    const req = request(
      { host: host.nodeIP, port: PORT_APISERVER, path: "/readyz", method: "GET", ca: creds!.ca, cert: creds!.cert, key: creds!.key, timeout: 3000, servername: undefined },
      (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ ok: res.statusCode === 200 && body.trim() === "ok", body: body.trim() }));
      },
    );
    req.on("error", (e) => resolve({ ok: false, body: e.message }));
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.end();
  });
}

function stripCriPrefix(log: string): string {
  // CRI log lines: "2026-11-24T08:00:00.000000000Z stderr F message"
  return log
    .split("\n")
    .map((l) => l.replace(/^\S+ (stdout|stderr) [FP] /, ""))
    .join("\n");
}

/** Status of etcd and the control plane (and the kubelet) on the host, in one remote command. */
export async function componentStatuses(host: Host, ctx: RunContext, logLines = 15): Promise<ComponentStatus[]> {
  const mode = ctx.cluster.spec.controlPlane.mode;
  const SEP = "@@kubeprov-component@@";
  const parts: string[] = [];
  // With external etcd the control plane runs no etcd of its own: it is not judged here.
  for (const c of hasExternalEtcd(ctx) ? CONTROL_PLANE_COMPONENTS : ALL_COMPONENTS) {
    if (mode === "static-pods") {
      parts.push(
        [
          `echo ${SEP} ${c}`,
          // Only containers started since the manifest was written count: a container's start adds
          // its N.log to /var/log/pods/<pod>/<container>/ (the directory's mtime), a running one only
          // appends to its file. So the broken pod just replaced, or the old one still running, is
          // never judged as the new one.
          `m=${MANIFESTS_DIR}/${c}.yaml; d=""`,
          `for x in $(ls -td /var/log/pods/kube-system_${c}-${host.name}_*/${c} 2>/dev/null); do if [ "$x" -nt "$m" ]; then d=$x; fi; break; done`,
          // Attempts = the highest N of N.log + 1 (the kubelet numbers a pod's container logs by restart count).
          `n=$(ls "$d" 2>/dev/null | sed -n 's/^\\([0-9]*\\)\\.log$/\\1/p' | sort -n | tail -1)`,
          `if [ -z "$d" ] || [ -z "$n" ]; then echo "0 no"; else echo "$((n + 1)) yes"; tail -n ${logLines} "$d/$n.log" 2>/dev/null; fi`,
        ].join("\n"),
      );
    } else {
      parts.push(
        [
          `echo ${SEP} ${c}`,
          `echo "$(( $(systemctl show -p NRestarts --value ${c} 2>/dev/null || echo 0) + 1 )) $(systemctl is-active ${c} 2>/dev/null)"`,
          // The latest run of the unit only (an older failure must not be blamed now).
          `inv=$(systemctl show -p InvocationID --value ${c} 2>/dev/null)`,
          `if [ -n "$inv" ]; then journalctl -u ${c} _SYSTEMD_INVOCATION_ID=$inv -n ${logLines} --no-pager -o cat 2>/dev/null; else journalctl -u ${c} -n ${logLines} --no-pager -o cat 2>/dev/null; fi`,
        ].join("\n"),
      );
    }
  }
  parts.push([`echo ${SEP} kubelet`, `echo "1 $(systemctl is-active kubelet 2>/dev/null)"`, `journalctl -u kubelet -n 40 --no-pager -o cat 2>/dev/null`].join("\n"));
  const r = await host.transport.exec(parts.join("\n"), { sudo: true, check: false, timeoutMs: 20_000 });
  const out: ComponentStatus[] = [];
  for (const chunk of r.stdout.split(SEP + " ").slice(1)) {
    const lines = chunk.split("\n");
    const component = lines[0].trim() as ComponentStatus["component"];
    const [attemptsText, state] = (lines[1] ?? "0 no").trim().split(/\s+/);
    const attempts = Number(attemptsText) || 0;
    const log = stripCriPrefix(lines.slice(2).join("\n").trim());
    const running = mode === "systemd" || component === "kubelet" ? state === "active" : attempts > 0;
    out.push({ component, attempts, running, log });
  }
  return out;
}

/** Causes that mean the process exited at once and always will: the first exit is enough. */
const IMMEDIATE_CAUSES = new Set(["unknown-flag", "invalid-flag-value"]);

/** Causes that no restart cures: one restart showing one of them is enough to fail. */
const FATAL_CAUSES = new Set(["unknown-flag", "invalid-flag-value", "port-in-use", "certificate-sans", "certificate-unknown-authority"]);

export interface JudgeOptions {
  /** Attempts per component when the wait began: only containers/runs started since count. */
  baseline?: Map<string, number>;
  /** Only these components are judged (others may restart because of them, e.g. when the API is down). */
  judge?: string[];
}

/** Components restarted too often since the wait began (or once, with a cause no restart cures). */
export function crashLooping(statuses: ComponentStatus[], mode: string, opts: JudgeOptions = {}): ComponentStatus[] {
  return statuses.filter((s) => {
    if (s.component === "kubelet") return false;
    if (opts.judge && !opts.judge.includes(s.component)) return false;
    const fresh = Math.max(0, s.attempts - (opts.baseline?.get(s.component) ?? 0));
    const causes = matchKnownCauses(s.log).map((c) => c.id);
    return (
      fresh > RESTARTS_BEFORE_FAILING + (mode === "systemd" ? 1 : 0) ||
      // A wrong command line is never transient: its first exit is enough.
      (s.attempts >= 1 && causes.some((c) => IMMEDIATE_CAUSES.has(c))) ||
      (fresh >= 1 && s.attempts >= 2 && causes.some((c) => FATAL_CAUSES.has(c)))
    );
  });
}

/** kube-controller-manager's /healthz and kube-scheduler's /livez on the host (they answer anonymously). */
export async function controllersHealthy(host: Host): Promise<{ ok: boolean; unhealthy: ComponentName[] }> {
  const r = await host.transport.exec(
    [
      "command -v curl >/dev/null 2>&1 || { echo nocurl; exit 0; }",
      `curl -sk -m 3 -o /dev/null -w 'kube-controller-manager %{http_code}\\n' https://127.0.0.1:${PORT_CONTROLLER_MANAGER}/healthz`,
      `curl -sk -m 3 -o /dev/null -w 'kube-scheduler %{http_code}\\n' https://127.0.0.1:${PORT_SCHEDULER}/livez`,
    ].join("\n"),
    { sudo: true, check: false, timeoutMs: 15_000 },
  );
  if (r.stdout.includes("nocurl")) return { ok: true, unhealthy: [] };
  const unhealthy = r.stdout
    .trim()
    .split("\n")
    .map((l) => l.split(" "))
    .filter(([, code]) => code !== "200")
    .map(([c]) => c as ComponentName);
  return { ok: unhealthy.length === 0, unhealthy };
}

/** The known cause in a component's own log that made it exit, if any. */
function exitCause(s: ComponentStatus): string | undefined {
  return matchKnownCauses(s.log).find((c) => IMMEDIATE_CAUSES.has(c.id) || FATAL_CAUSES.has(c.id))?.id;
}

/** The failure text: which components, their log tails, known causes. */
export function diagnosis(statuses: ComponentStatus[], mode: string, lastBody: string, opts: JudgeOptions & { unhealthy?: string[] } = {}): { summary: string; details: string } {
  const broken = crashLooping(statuses, mode, opts);
  const notStarted = statuses.filter((s) => s.component !== "kubelet" && s.attempts === 0 && (!opts.judge || opts.judge.includes(s.component)));
  const kubelet = statuses.find((s) => s.component === "kubelet");
  const blamed: ComponentStatus[] = [];
  if (kubelet && !kubelet.running) blamed.push(kubelet);
  blamed.push(...broken);
  if (!blamed.length) blamed.push(...notStarted);
  if (!blamed.length && opts.unhealthy?.length) blamed.push(...statuses.filter((s) => opts.unhealthy!.includes(s.component)));
  if (!blamed.length) blamed.push(...statuses.filter((s) => s.component === "kube-apiserver" || s.component === "etcd"));
  const names = blamed.map((s) =>
    s.component === "kubelet"
      ? "kubelet is not running"
      : s.attempts === 0
        ? `${s.component} never started`
        : `${s.component} ${exitCause(s) ? `exited (${exitCause(s)})${s.attempts > 1 ? `, restarted ${s.attempts - 1} time${s.attempts === 2 ? "" : "s"}` : ""}` : s.attempts > 1 ? `restarted ${s.attempts - 1} time${s.attempts === 2 ? "" : "s"}` : "not ready"}`,
  );
  const details: string[] = [];
  for (const s of blamed) {
    const source = s.component === "kubelet" || mode === "systemd" ? `journalctl -u ${s.component}` : `/var/log/pods/kube-system_${s.component}-*`;
    details.push(`--- ${s.component} (${source}), last lines:`, lastLines(s.log || "(no log)", s.component === "kubelet" ? 15 : 12));
  }
  if (notStarted.length && mode === "static-pods" && kubelet) {
    details.push("--- kubelet (journalctl -u kubelet), last lines:", lastLines(kubelet.log || "(no log)", 15));
  }
  const causes = matchKnownCauses(statuses.map((s) => s.log).join("\n"));
  for (const c of causes) details.push(`cause (${c.id}): ${c.advice}`);
  if (lastBody) details.push(`last /readyz answer: ${lastLines(lastBody, 6)}`);
  return { summary: names.join("; "), details: [...new Set(details)].join("\n") };
}

/** The wait that comes before the controller manager and the scheduler start on the first control plane. */
export const WAIT_API_SERVER_TASK = "wait-control-plane/api-server";

/**
 * /readyz for a check: a check that found it ok earlier in this run answers for later checks of the
 * same host while no component has changed in this run (a no-op re-run asks once, not per wait).
 */
async function readyzForCheck(host: Host, ctx: RunContext): Promise<{ ok: boolean; body: string }> {
  const key = `wait/readyz-ok/${host.name}`;
  if (ctx.shared.get(key) === true && !changedComponents(ctx, host).length) return { ok: true, body: "ok" };
  const r = await readyz(host, ctx);
  if (r.ok && !changedComponents(ctx, host).length) ctx.shared.set(key, true);
  return r;
}

/**
 * `controllers: false` waits for etcd and the API server only (their changes and /readyz), not the
 * controller manager's and the scheduler's health: the wait they start after, so that their first
 * leader election finds the API server's RBAC in place (a forbidden first attempt costs a jittered
 * retry of 2 to 4.4 s).
 */
export function waitControlPlaneTask(opts: { hosts: (ctx: RunContext) => Host[]; after: string[]; name?: string; phase?: string; perHost?: boolean; controllers?: boolean }): Task {
  const controllers = opts.controllers ?? true;
  const watched = (cs: ComponentName[]) => (controllers ? cs : cs.filter((c) => c === "etcd" || c === "kube-apiserver"));
  return {
    name: opts.name ?? WAIT_CONTROL_PLANE_TASK,
    phase: opts.phase ?? "wait-control-plane",
    ...(opts.perHost ? { perHost: true } : {}),
    description: controllers
      ? "wait until kube-apiserver answers /readyz ok and the controller manager and scheduler are healthy (bounded; diagnoses what is not running)"
      : "wait until kube-apiserver answers /readyz ok (bounded; diagnoses what is not running)",
    waitsFor: controllers ? "the API server's /readyz and the controllers' health (the kubelet starting the control plane)" : "the API server's /readyz (the kubelet starting etcd and the API server)",
    hosts: opts.hosts,
    after: opts.after,
    checkAhead: true,
    async check(host, ctx): Promise<CheckResult> {
      const changed = watched(changedComponents(ctx, host));
      if (changed.length) return { needed: true, reason: `wait for the new ${changed.join(", ")} and /readyz` };
      const r = await readyzForCheck(host, ctx);
      return r.ok ? { needed: false, reason: "/readyz ok" } : { needed: true, reason: `wait for /readyz (now: ${r.body.split("\n")[0] || "no answer"})` };
    },
    async apply(host, ctx) {
      const started = performance.now();
      const limit = Number(ctx.options.waitTimeoutMs ?? WAIT_CONTROL_PLANE_MS);
      const mode = ctx.cluster.spec.controlPlane.mode;
      let last = { ok: false, body: "" };
      let lastStatusAt = 0;
      // Restarts before this wait do not count (a component may have restarted while the one it
      // needs was being replaced).
      const baseline = new Map((await componentStatuses(host, ctx, 1)).map((s) => [s.component, s.attempts] as [string, number]));
      // Components this run changed: /readyz counts only once each runs a new container (static
      // pods; the kubelet replaces them asynchronously) — systemd units were restarted synchronously.
      let pending = mode === "static-pods" ? watched(changedComponents(ctx, host)) : [];
      let unhealthy: ComponentName[] = [];
      for (;;) {
        last = await readyz(host, ctx);
        if (last.ok && pending.length) {
          const st = await componentStatuses(host, ctx, 1);
          pending = pending.filter((c) => !st.some((s) => s.component === c && s.attempts > 0));
        }
        if (last.ok && !pending.length) {
          if (!controllers) return { detail: `API server ready after ${((performance.now() - started) / 1000).toFixed(1)} s` };
          // The API is ready: the controller-manager and the scheduler must be healthy too.
          const h = await controllersHealthy(host);
          unhealthy = h.unhealthy;
          if (h.ok) return { detail: `control plane ready after ${((performance.now() - started) / 1000).toFixed(1)} s` };
        }
        const elapsed = performance.now() - started;
        if (elapsed - lastStatusAt > 3000) {
          lastStatusAt = elapsed;
          const st = await componentStatuses(host, ctx, 40);
          // While the API is down only etcd and kube-apiserver are judged: the others restart because of them.
          const judge = last.ok && controllers ? [...ALL_COMPONENTS] : ["etcd", "kube-apiserver"];
          if (crashLooping(st, mode, { baseline, judge }).length || elapsed > limit) {
            const d = diagnosis(st, mode, last.body, { baseline, judge, unhealthy });
            throw new HostError(host.name, opts.name ?? WAIT_CONTROL_PLANE_TASK, `control plane not ready after ${(elapsed / 1000).toFixed(0)} s: ${d.summary}`, d.details);
          }
        }
        await new Promise((r) => setTimeout(r, 400));
      }
    },
  };
}

export { shq, urlHost };
