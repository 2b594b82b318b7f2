// How events are shown: listr2 on a terminal, plain lines otherwise (or with CI set), JSON Lines
// with -o json. The engine only calls reporter.emit() and reporter.close().
import type { Reporter } from "../events.js";
import { JsonLinesReporter } from "./json.js";
import { ListrReporter } from "./listr.js";
import { PlainReporter } from "./plain.js";

export { JsonLinesReporter } from "./json.js";
export { PlainReporter } from "./plain.js";
export { ListrReporter } from "./listr.js";
export { formatTask, formatCheck, formatSummary, taskLabel } from "./format.js";

export interface ReporterOptions {
  /** -v count: 1 or more shows debug logs. */
  verbose?: number;
  /** Force the terminal renderer on or off (default: stdout is a TTY and CI is not set). */
  interactive?: boolean;
}

/** True when CI is set to anything but "", "0" or "false". */
export function inCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const v = env.CI;
  return v !== undefined && v !== "" && v !== "0" && v.toLowerCase() !== "false";
}

export function createReporter(format: "text" | "json", opts: ReporterOptions = {}): Reporter {
  if (format === "json") return new JsonLinesReporter(process.stdout);
  const interactive = opts.interactive ?? (process.stdout.isTTY === true && !inCI());
  return interactive ? new ListrReporter(opts.verbose ?? 0) : new PlainReporter(process.stdout, opts.verbose ?? 0);
}
