// fileTask: the task for "this file must exist on the host with exactly these bytes and this
// mode (and owner)". check is one read-only remote command (stat + sha256sum: the file's bytes never
// travel back); apply writes atomically through the transport (temp file + rename, explicit mode).
// Content is rendered once per host and run: apply writes exactly the bytes check compared.
import { createHash } from "node:crypto";
import { shq } from "../transport/transport.js";
import type { ApplyResult, CheckResult, Host, RunContext, Task } from "./task.js";

type MaybePromise<T> = T | Promise<T>;

export interface FileTaskSpec {
  /** Unique task name, "phase/name". */
  name: string;
  phase: string;
  description?: string;
  /** Absolute path on the host (or a function of the host, for per-host paths). */
  path: string | ((host: Host, ctx: RunContext) => string);
  /** Explicit mode, e.g. 0o600 for keys, 0o644 for configs. */
  mode: number;
  /** "user" or "user:group"; when set, check compares it too. Default: not checked (the writing user, root). */
  owner?: string;
  /** The bytes the file must hold on this host. Never logged: may be a secret. */
  content: string | Buffer | ((host: Host, ctx: RunContext) => MaybePromise<string | Buffer>);
  /** Default: every host of the run. */
  hosts?: (ctx: RunContext) => Host[];
  after?: string[];
  serial?: boolean;
  perHost?: boolean;
  /** Runs after a write (e.g. `systemctl daemon-reload`); not run when the file was already right. */
  afterWrite?: (host: Host, ctx: RunContext) => Promise<void>;
}

/** What is on the host now, from one remote command. */
export interface RemoteFileState {
  exists: boolean;
  /** Permission bits, e.g. 0o644. */
  mode?: number;
  /** "user:group". */
  owner?: string;
  /** stat's %F: "regular file", "directory", … */
  type?: string;
  /** Hex sha256 of the content (regular files only). */
  sha256?: string;
}

/** The shell command that prints a file's state (parsed by parseFileState). Read-only. */
export function fileStateCommand(path: string): string {
  const p = shq(path);
  return [
    `if [ ! -e ${p} ]; then echo absent; exit 0; fi`,
    `stat -L -c '%a %U:%G %F' -- ${p}`,
    `if [ -f ${p} ]; then sha256sum -- ${p} | cut -d' ' -f1; fi`,
  ].join("\n");
}

/** Parses fileStateCommand's output. */
export function parseFileState(text: string): RemoteFileState {
  const lines = text.trim().split("\n");
  if (lines[0]?.trim() === "absent") return { exists: false };
  const m = /^([0-7]+) (\S+) (.+)$/.exec(lines[0]?.trim() ?? "");
  if (!m) throw new Error(`unexpected file state output: ${JSON.stringify(text.slice(0, 200))}`);
  const sha = lines[1]?.trim();
  return {
    exists: true,
    mode: parseInt(m[1], 8),
    owner: m[2],
    type: m[3],
    ...(sha && /^[0-9a-f]{64}$/.test(sha) ? { sha256: sha } : {}),
  };
}

/** The differences between what is there and what should be, as short phrases; empty when equal. */
export function fileDifferences(
  state: RemoteFileState,
  want: { sha256: string; mode: number; owner?: string },
): string[] {
  if (!state.exists) return ["absent"];
  const diffs: string[] = [];
  if (state.type !== "regular file") return [`is a ${state.type ?? "non-regular file"}`];
  if (state.sha256 !== want.sha256) diffs.push("content differs");
  const wantMode = want.mode & 0o7777;
  if (state.mode !== wantMode) diffs.push(`mode ${octal(state.mode ?? 0)} -> ${octal(wantMode)}`);
  if (want.owner) {
    const [wu, wg] = want.owner.split(":");
    const [hu, hg] = (state.owner ?? "").split(":");
    if (hu !== wu || (wg !== undefined && hg !== wg)) diffs.push(`owner ${state.owner} -> ${want.owner}`);
  }
  return diffs;
}

export function octal(mode: number): string {
  return "0" + (mode & 0o7777).toString(8).padStart(3, "0");
}

export function sha256Hex(data: string | Buffer): string {
  return createHash("sha256").update(data).digest("hex");
}

/** A Task that keeps one file on each of its hosts exactly as rendered. */
export function fileTask(spec: FileTaskSpec): Task {
  // Rendered content per run and host, so apply writes the bytes check compared.
  const rendered = new WeakMap<RunContext, Map<string, Buffer>>();
  const pathOf = (host: Host, ctx: RunContext) => (typeof spec.path === "function" ? spec.path(host, ctx) : spec.path);
  const render = async (host: Host, ctx: RunContext): Promise<Buffer> => {
    let perRun = rendered.get(ctx);
    if (!perRun) rendered.set(ctx, (perRun = new Map()));
    let data = perRun.get(host.name);
    if (!data) {
      const c = typeof spec.content === "function" ? await spec.content(host, ctx) : spec.content;
      data = Buffer.isBuffer(c) ? c : Buffer.from(c, "utf8");
      perRun.set(host.name, data);
    }
    return data;
  };
  const task: Task = {
    name: spec.name,
    phase: spec.phase,
    description: spec.description ?? `write ${typeof spec.path === "string" ? spec.path : "a file"}`,
    hosts: spec.hosts ?? ((ctx) => ctx.hosts),
    ...(spec.after ? { after: spec.after } : {}),
    ...(spec.serial ? { serial: true } : {}),
    ...(spec.perHost ? { perHost: true } : {}),
    async check(host, ctx): Promise<CheckResult> {
      const path = pathOf(host, ctx);
      const data = await render(host, ctx);
      const res = await host.transport.exec(fileStateCommand(path), { sudo: true });
      const state = parseFileState(res.stdout);
      const diffs = fileDifferences(state, { sha256: sha256Hex(data), mode: spec.mode, owner: spec.owner });
      if (diffs.length === 0) return { needed: false, reason: `${path} up to date` };
      if (!state.exists) return { needed: true, reason: `create ${path} (${data.length} bytes, mode ${octal(spec.mode)})` };
      if (state.type !== "regular file") throw new Error(`${path} ${diffs[0]}, not a regular file: refusing to replace it`);
      return { needed: true, reason: `update ${path}: ${diffs.join(", ")}` };
    },
    async apply(host, ctx): Promise<ApplyResult> {
      const path = pathOf(host, ctx);
      const data = await render(host, ctx);
      await host.transport.writeFile(path, data, { mode: spec.mode, ...(spec.owner ? { owner: spec.owner } : {}) });
      if (spec.afterWrite) await spec.afterWrite(host, ctx);
      return {};
    },
  };
  return task;
}
