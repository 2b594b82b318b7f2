// Phase "preflight": kubeadm's checks on every host (by role), one `check` event per check, and
// with --fix the repairs first. Each host is read with ONE remote command (gather.ts); the rules
// are pure functions of its output (preflight/checks.ts), the repairs are planned as data
// (preflight/fixes.ts).
import { performance } from "node:perf_hooks";
import { HostError, UsageError } from "../errors.js";
import type { CheckResult, Host, RunContext, Task } from "../engine/task.js";
import { gatherScript, parseSections, type Sections } from "../preflight/gather.js";
import { criSocketOverride, evaluateChecks, knownCheckIds, parseIgnoreList, type CheckResultLine, type PreflightInput } from "../preflight/checks.js";
import { planFixes, type FixStep } from "../preflight/fixes.js";

export const PREFLIGHT_PHASE = "preflight";
export const PREFLIGHT_FIX_TASK = "preflight/fix";
export const PREFLIGHT_CHECKS_TASK = "preflight/checks";

export interface Gathered {
  sections: Sections;
  /** This machine's clock (s since the epoch) when the host printed its own. */
  localTime: number;
}

/** Run the gather script on a host (read-only) and note this machine's clock around it. */
export async function gatherHost(host: Host, ctx: RunContext): Promise<Gathered> {
  const t0 = Date.now();
  const mirrors = [...new Set(Object.values(ctx.cluster.spec.registryMirrors).flat())];
  const r = await host.transport.exec(gatherScript({ mirrors }), { sudo: true, timeoutMs: 60_000 });
  const t1 = Date.now();
  return { sections: parseSections(r.stdout), localTime: (t0 + t1) / 2000 };
}

export function preflightInput(host: Host, ctx: RunContext, g: Gathered): PreflightInput {
  return {
    host: host.name,
    roles: host.roles,
    nodeIP: host.nodeIP,
    cluster: ctx.cluster,
    sections: g.sections,
    localTime: g.localTime,
    criSocket: criSocketOverride(ctx.cluster, host.name),
  };
}

/**
 * --ignore-preflight-errors as given (array or comma list). Throws UsageError naming the unknown
 * IDs: commands call this before connecting to anything.
 */
/** commander collector for --ignore-preflight-errors (comma separated, repeatable). */
export const collectIds = (v: string, prev: string[] = []): string[] => [...prev, ...v.split(",").map((s) => s.trim()).filter(Boolean)];

export function validateIgnorePreflightErrors(value: string[] | string | undefined): string[] {
  const parsed = parseIgnoreList(value);
  if (parsed.unknown.length > 0) {
    throw new UsageError(
      `--ignore-preflight-errors: unknown check ID${parsed.unknown.length > 1 ? "s" : ""} ${parsed.unknown.join(", ")}; known IDs: all, ${knownCheckIds().join(", ")}`,
    );
  }
  return parsed.all ? ["all"] : [...parsed.ids];
}

function ignoreOf(ctx: RunContext) {
  const p = parseIgnoreList(ctx.options["ignorePreflightErrors"] as string[] | string | undefined);
  if (p.unknown.length) throw new UsageError(`--ignore-preflight-errors: unknown check ID ${p.unknown.join(", ")}`);
  return p;
}

/** The results of the last check run on each host (for commands that summarise). */
export function preflightResults(ctx: RunContext, host: Host): CheckResultLine[] | undefined {
  return ctx.shared.get(`preflight/results/${host.name}`) as CheckResultLine[] | undefined;
}

function fixesFor(host: Host, ctx: RunContext, g: Gathered): FixStep[] {
  return planFixes({ host: host.name, nodeIP: host.nodeIP, roles: host.roles, cluster: ctx.cluster, sections: g.sections }).filter(
    (s) => s.files.length > 0 || s.commands.length > 0,
  );
}

function fixTask(): Task {
  return {
    name: PREFLIGHT_FIX_TASK,
    phase: PREFLIGHT_PHASE,
    description: "repair what preflight can repair (--fix): swap, firewall ports, SELinux, modules, sysctls, hostname",
    hosts: (ctx) => (ctx.options["fix"] ? ctx.hosts : []),
    perHost: true,
    async check(host, ctx): Promise<CheckResult> {
      const steps = fixesFor(host, ctx, await gatherHost(host, ctx));
      if (steps.length === 0) return { needed: false, reason: "nothing to fix" };
      return { needed: true, reason: steps.map((s) => s.description).join("; ") };
    },
    async apply(host, ctx) {
      const steps = fixesFor(host, ctx, await gatherHost(host, ctx));
      const done: string[] = [];
      for (const s of steps) {
        for (const f of s.files) await host.transport.writeFile(f.path, f.content, { mode: f.mode });
        for (const c of s.commands) {
          const r = await host.transport.exec(c, { sudo: true, check: false, timeoutMs: 120_000 });
          if (r.code !== 0) throw new HostError(host.name, PREFLIGHT_FIX_TASK, `fix for ${s.id} failed (exit ${r.code}): ${c}`, (r.stderr || r.stdout).trim());
        }
        ctx.log("info", `fixed ${s.id}: ${s.description}`, host, PREFLIGHT_FIX_TASK);
        if (s.cannot) ctx.log("warn", `cannot fix ${s.id} here: ${s.cannot}`, host, PREFLIGHT_FIX_TASK);
        done.push(s.description);
      }
      return { detail: done.join("; ") };
    },
  };
}

function checksTask(): Task {
  return {
    name: PREFLIGHT_CHECKS_TASK,
    phase: PREFLIGHT_PHASE,
    description: "preflight checks (kubeadm's, by role)",
    hosts: (ctx) => ctx.hosts,
    after: [PREFLIGHT_FIX_TASK],
    perHost: true,
    readOnly: true,
    async check(): Promise<CheckResult> {
      return { needed: true, reason: "run the checks" };
    },
    async apply(host, ctx) {
      const ignore = ignoreOf(ctx);
      const t0 = performance.now();
      const g = await gatherHost(host, ctx);
      const results = evaluateChecks(preflightInput(host, ctx, g), ignore);
      ctx.shared.set(`preflight/results/${host.name}`, results);
      for (const r of results) {
        ctx.reporter.emit({ type: "check", host: host.name, id: r.id, status: r.status, message: r.message, ...(r.ignored ? { ignored: true } : {}) });
      }
      const failed = results.filter((r) => r.status === "fail");
      const warned = results.filter((r) => r.status === "warn");
      ctx.log("debug", `${results.length} checks in ${Math.round(performance.now() - t0)} ms`, host, PREFLIGHT_CHECKS_TASK);
      if (failed.length > 0) {
        throw new HostError(
          host.name,
          PREFLIGHT_CHECKS_TASK,
          `preflight failed: ${failed.map((f) => f.id).join(", ")} (fix them, run with --fix, or --ignore-preflight-errors=${failed.map((f) => f.id).join(",")})`,
          failed.map((f) => `${f.id}: ${f.message}`).join("\n"),
        );
      }
      return { detail: `${results.length} checks passed${warned.length ? `, ${warned.length} warning${warned.length > 1 ? "s" : ""}` : ""}` };
    },
  };
}

/** The preflight phase: the fixes (only with ctx.options.fix), then the checks on every host. */
export function preflightTasks(): Task[] {
  return [fixTask(), checksTask()];
}
