// serviceTask: "these files define a systemd service; it must be enabled and running, restarted
// when one of them changed". check is one read-only remote command (each file's mode + sha256,
// is-enabled, is-active); apply writes only the files that differ, reloads systemd when a unit
// file changed, and restarts only when something changed or the service is not running.
import { fileDifferences, fileStateCommand, octal, parseFileState, sha256Hex } from "../engine/file-task.js";
import { shq } from "../transport/transport.js";
import { HostError } from "../errors.js";
import type { ApplyResult, CheckResult, Host, RunContext, Task } from "../engine/task.js";

export interface ServiceFile {
  path: string;
  content: string;
  mode: number;
  /** Write only when absent (e.g. a base unit another tool may own); never compared. */
  createOnly?: boolean;
}

export interface ServiceTaskSpec {
  name: string;
  phase: string;
  description: string;
  /** The systemd unit, e.g. "kubelet" or "kube-apiserver". */
  unit: string;
  hosts: (ctx: RunContext) => Host[];
  after?: string[];
  perHost?: boolean;
  files: (host: Host, ctx: RunContext) => ServiceFile[] | Promise<ServiceFile[]>;
  /** When only its files changed and it is running, `systemctl reload` instead of restart (no dropped connections). */
  reload?: boolean;
  /** Runs before the (re)start, after files are written (e.g. mkdir of a data directory). */
  beforeStart?: (host: Host, ctx: RunContext) => Promise<void>;
}

interface ServiceState {
  diffs: Array<{ file: ServiceFile; what: string[] }>;
  enabled: boolean;
  active: boolean;
}

const SEP = "@@kubeprov-file@@";

async function serviceState(host: Host, unit: string, files: ServiceFile[]): Promise<ServiceState> {
  const script = [
    ...files.map((f) => `echo ${SEP}; ${fileStateCommand(f.path).split("\n").join("; ")}`),
    `echo ${SEP}; systemctl is-enabled ${shq(unit)} 2>/dev/null || true; systemctl is-active ${shq(unit)} 2>/dev/null || true`,
  ].join("\n");
  const res = await host.transport.exec(script, { sudo: true });
  const parts = res.stdout.split(SEP + "\n").slice(1);
  const diffs: ServiceState["diffs"] = [];
  files.forEach((file, i) => {
    const state = parseFileState(parts[i] ?? "absent");
    if (file.createOnly) {
      if (!state.exists) diffs.push({ file, what: ["absent"] });
      return;
    }
    const what = fileDifferences(state, { sha256: sha256Hex(file.content), mode: file.mode });
    if (what.length) diffs.push({ file, what });
  });
  const [enabledLine = "", activeLine = ""] = (parts[files.length] ?? "").trim().split("\n");
  return { diffs, enabled: enabledLine.trim() === "enabled", active: activeLine.trim() === "active" };
}

export function serviceTask(spec: ServiceTaskSpec): Task {
  const rendered = new WeakMap<RunContext, Map<string, ServiceFile[]>>();
  const filesOf = async (host: Host, ctx: RunContext) => {
    let perRun = rendered.get(ctx);
    if (!perRun) rendered.set(ctx, (perRun = new Map()));
    let f = perRun.get(host.name);
    if (!f) perRun.set(host.name, (f = await spec.files(host, ctx)));
    return f;
  };
  return {
    name: spec.name,
    phase: spec.phase,
    description: spec.description,
    hosts: spec.hosts,
    ...(spec.after ? { after: spec.after } : {}),
    ...(spec.perHost ? { perHost: true } : {}),
    async check(host, ctx): Promise<CheckResult> {
      const st = await serviceState(host, spec.unit, await filesOf(host, ctx));
      const reasons = st.diffs.map((d) => `${d.file.path}: ${d.what.join(", ")}`);
      if (!st.enabled) reasons.push(`${spec.unit} not enabled`);
      if (!st.active) reasons.push(`${spec.unit} not running`);
      if (reasons.length === 0) return { needed: false, reason: `${spec.unit} running, configuration up to date` };
      return { needed: true, reason: reasons.join("; ") };
    },
    async apply(host, ctx): Promise<ApplyResult> {
      const files = await filesOf(host, ctx);
      const st = await serviceState(host, spec.unit, files);
      for (const d of st.diffs) await host.transport.writeFile(d.file.path, d.file.content, { mode: d.file.mode });
      const unitChanged = st.diffs.some((d) => /\.(service|conf)$/.test(d.file.path) && d.file.path.startsWith("/etc/systemd/"));
      if (spec.beforeStart) await spec.beforeStart(host, ctx);
      const cmds: string[] = [];
      if (unitChanged) cmds.push("systemctl daemon-reload");
      if (!st.enabled) cmds.push(`systemctl enable ${shq(spec.unit)} >/dev/null 2>&1 || systemctl enable ${shq(spec.unit)}`);
      if (!st.active) cmds.push(`systemctl restart ${shq(spec.unit)}`);
      else if (st.diffs.length) cmds.push(`systemctl ${spec.reload && !unitChanged ? "reload" : "restart"} ${shq(spec.unit)}`);
      if (!cmds.length) cmds.push("true");
      const r = await host.transport.exec(cmds.join(" && "), { sudo: true, check: false, timeoutMs: 120_000 });
      if (r.code !== 0) {
        // The unit's own log says why it did not start; systemctl only says that it did not.
        const log = await host.transport.exec(`journalctl -u ${shq(spec.unit)} -n 15 --no-pager -o cat`, { sudo: true, check: false });
        throw new HostError(host.name, spec.name, `${spec.unit} did not start (${cmds.join(" && ")})`, [(r.stderr || r.stdout).trim(), `--- journalctl -u ${spec.unit}:`, log.stdout.trim()].join("\n"));
      }
      const written = st.diffs.map((d) => `${d.file.path} (${octal(d.file.mode)})`);
      const how = !st.active ? "started" : spec.reload && !unitChanged ? "reloaded" : "restarted";
      return { detail: written.length ? `wrote ${written.join(", ")}; ${spec.unit} ${how}` : `${spec.unit} started` };
    },
  };
}
