// Plain lines for logs and CI: one readable line per finished task, per check and per log message,
// and a summary line. No cursor movement, no colours.
import type { KubeprovEvent, Reporter } from "../events.js";
import { formatCheck, formatLog, formatSummary, formatTask } from "./format.js";
import { flush } from "./json.js";

export class PlainReporter implements Reporter {
  constructor(
    private readonly out: NodeJS.WritableStream = process.stdout,
    /** 1 or more also prints debug logs and task starts. */
    private readonly verbose = 0,
  ) {}

  emit(event: KubeprovEvent): void {
    const line = this.format(event);
    if (line !== undefined) this.out.write(line + "\n");
  }

  private format(e: KubeprovEvent): string | undefined {
    switch (e.type) {
      case "task":
        return formatTask(e);
      case "task-start":
        return this.verbose > 0 ? `[${e.host}] ${e.task}: started` : undefined;
      case "check":
        return formatCheck(e);
      case "log":
        return e.level === "debug" && this.verbose === 0 ? undefined : formatLog(e);
      case "summary":
        return formatSummary(e);
    }
  }

  async close(): Promise<void> {
    await flush(this.out);
  }
}
