// Shared wording for the text reporters: one line per finished task, check and summary.
import type { KubeprovEvent } from "../events.js";

type TaskEvent = Extract<KubeprovEvent, { type: "task" }>;
type CheckEvent = Extract<KubeprovEvent, { type: "check" }>;
type SummaryEvent = Extract<KubeprovEvent, { type: "summary" }>;

/** "certs/ca" when the task name already carries its phase, else "phase/task". */
export function taskLabel(e: { task: string; phase: string }): string {
  return e.task.startsWith(`${e.phase}/`) || !e.phase ? e.task : `${e.phase}/${e.task}`;
}

export function taskStatusWords(e: TaskEvent): string {
  switch (e.status) {
    case "changed":
      return `${e.dryRun ? "would change" : "changed"}${e.reason ? ` (${e.reason})` : ""}`;
    case "ok":
      return `ok${e.reason ? ` (${e.reason})` : ""}`;
    case "skipped":
      return `skipped${e.reason ? ` (${e.reason})` : ""}`;
    case "failed":
      return `FAILED: ${e.error ?? "failed"}`;
  }
}

export function indent(text: string, by = "    "): string {
  return text
    .replace(/\s+$/, "")
    .split("\n")
    .map((l) => by + l)
    .join("\n");
}

/** `[host] phase/task: changed (reason)`, plus indented details for failures. */
export function formatTask(e: TaskEvent): string {
  const head = `[${e.host}] ${taskLabel(e)}: ${taskStatusWords(e)}`;
  return e.status === "failed" && e.details ? `${head}\n${indent(e.details)}` : head;
}

export function formatCheck(e: CheckEvent): string {
  const word = e.status === "pass" ? "pass" : e.status === "warn" ? "WARN" : "FAIL";
  return `[${e.host}] check ${e.id}: ${word} ${e.message}${e.ignored ? " (ignored)" : ""}`;
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)}ms` : `${(ms / 1000).toFixed(1)}s`;
}

export function formatSummary(e: SummaryEvent): string {
  const changed = e.dryRun ? `${e.changed} would change` : `${e.changed} changed`;
  return `${e.dryRun ? "dry run: " : "summary: "}${changed}, ${e.unchanged} unchanged, ${e.failed} failed, ${e.skipped} skipped in ${formatDuration(e.durationMs)}`;
}

export function formatLog(e: Extract<KubeprovEvent, { type: "log" }>): string {
  const where = e.host ? `[${e.host}]${e.task ? ` ${e.task}` : ""} ` : "";
  const level = e.level === "info" ? "" : `${e.level}: `;
  return `${where}${level}${e.message}`;
}
