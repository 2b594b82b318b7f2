// Phase "wait-control-plane": the API server on the first control plane answers /readyz "ok".
// Bounded: a component that keeps restarting fails the task early, and everything fails by the
// deadline; the failure names the component(s), shows their log tails and any known cause.
import { performance } from "node:perf_hooks";
import { request } from "node:https";
import { parse as parseYaml } from "yaml";
import { BIN_DIR, KUBERNETES_DIR, MANIFESTS_DIR, PORT_APISERVER } from "../constants.js";
import { HostError, lastLines } from "../errors.js";
import { shq } from "../transport/transport.js";
import type { CheckResult, Host, RunContext, Task } from "../engine/task.js";
import { ALL_COMPONENTS, urlHost, type ComponentName } from "../plan/components.js";
import { matchKnownCauses } from "../plan/diagnose.js";

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
    `if [ -x ${BIN_DIR}/kubectl ]; then ${BIN_DIR}/kubectl --kubeconfig=${ADMIN_CONF} --request-timeout=3s get --raw=/readyz 2>&1; else echo @@no-kubectl@@; exit 3; fi`,
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
  for (const c of ALL_COMPONENTS) {
    if (mode === "static-pods") {
      parts.push(
        [
          `echo ${SEP} ${c}`,
          // Only containers started since the manifest was written count (an older pod of the same
          // component, e.g. the broken one just replaced, must not be blamed).
          `m=${MANIFESTS_DIR}/${c}.yaml; d=""`,
          `for x in $(ls -td /var/log/pods/kube-system_${c}-${host.name}_*/${c} 2>/dev/null); do if [ -n "$(find "$x" -maxdepth 1 -name '*.log' -newer "$m" 2>/dev/null | head -1)" ]; then d=$x; break; fi; done`,
          `if [ -z "$d" ]; then echo "0 no"; else k=$(find "$d" -maxdepth 1 -name '*.log' -newer "$m" | wc -l); ` +
            `n=$(ls "$d" | sed -n 's/^\\([0-9]*\\)\\.log$/\\1/p' | sort -n | tail -1); ` +
            `echo "$k yes"; tail -n ${logLines} "$d/$n.log" 2>/dev/null; fi`,
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

/** Causes that no restart cures: one restart showing one of them is enough to fail. */
const FATAL_CAUSES = new Set(["unknown-flag", "invalid-flag-value", "port-in-use", "certificate-sans", "certificate-unknown-authority"]);

/** Components restarted too often while the API is not ready (or restarted once with a fatal known cause). */
export function crashLooping(statuses: ComponentStatus[], mode: string): ComponentStatus[] {
  return statuses.filter(
    (s) =>
      s.component !== "kubelet" &&
      (s.attempts > RESTARTS_BEFORE_FAILING + (mode === "systemd" ? 1 : 0) ||
        (s.attempts >= 2 && matchKnownCauses(s.log).some((c) => FATAL_CAUSES.has(c.id)))),
  );
}

/** The failure text: which components, their log tails, known causes. */
export function diagnosis(statuses: ComponentStatus[], mode: string, lastBody: string): { summary: string; details: string } {
  const broken = crashLooping(statuses, mode);
  const notStarted = statuses.filter((s) => s.component !== "kubelet" && s.attempts === 0);
  const kubelet = statuses.find((s) => s.component === "kubelet");
  const blamed: ComponentStatus[] = [];
  if (kubelet && !kubelet.running) blamed.push(kubelet);
  blamed.push(...broken);
  if (!blamed.length) blamed.push(...notStarted);
  if (!blamed.length) blamed.push(...statuses.filter((s) => s.component === "kube-apiserver" || s.component === "etcd"));
  const names = blamed.map((s) =>
    s.component === "kubelet"
      ? "kubelet is not running"
      : s.attempts === 0
        ? `${s.component} never started`
        : `${s.component} ${s.attempts > 1 ? `restarted ${s.attempts - 1} time${s.attempts === 2 ? "" : "s"}` : "not ready"}`,
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

export function waitControlPlaneTask(opts: { hosts: (ctx: RunContext) => Host[]; after: string[] }): Task {
  return {
    name: WAIT_CONTROL_PLANE_TASK,
    phase: "wait-control-plane",
    description: "wait until kube-apiserver answers /readyz ok (bounded; diagnoses what is not running)",
    hosts: opts.hosts,
    after: opts.after,
    async check(host, ctx): Promise<CheckResult> {
      const r = await readyz(host, ctx);
      return r.ok ? { needed: false, reason: "/readyz ok" } : { needed: true, reason: `wait for /readyz (now: ${r.body.split("\n")[0] || "no answer"})` };
    },
    async apply(host, ctx) {
      const started = performance.now();
      const limit = Number(ctx.options.waitTimeoutMs ?? WAIT_CONTROL_PLANE_MS);
      const mode = ctx.cluster.spec.controlPlane.mode;
      let last = { ok: false, body: "" };
      let lastStatusAt = 0;
      for (;;) {
        last = await readyz(host, ctx);
        if (last.ok) return { detail: `/readyz ok after ${((performance.now() - started) / 1000).toFixed(1)} s` };
        const elapsed = performance.now() - started;
        if (elapsed - lastStatusAt > 3000) {
          lastStatusAt = elapsed;
          const st = await componentStatuses(host, ctx, 40);
          if (crashLooping(st, mode).length || elapsed > limit) {
            const d = diagnosis(st, mode, last.body);
            throw new HostError(host.name, WAIT_CONTROL_PLANE_TASK, `control plane not ready after ${(elapsed / 1000).toFixed(0)} s: ${d.summary}`, d.details);
          }
        }
        await new Promise((r) => setTimeout(r, 400));
      }
    },
  };
}

export { shq, urlHost };
