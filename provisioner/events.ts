// The engine never prints. It emits events to one Reporter; the CLI picks how they are drawn
// (listr2 on a terminal, plain lines, or JSON Lines with -o json).

export type TaskStatus = "ok" | "changed" | "failed" | "skipped";

export type KubeprovEvent =
  /** A task started on a host. */
  | { type: "task-start"; host: string; task: string; phase: string }
  /**
   * A task finished on a host. ok: nothing to do; changed: applied (or, with dryRun, would
   * change); failed: error (message, details = stderr / log tail); skipped: a dependency failed or
   * the phase was skipped.
   */
  | {
      type: "task";
      host: string;
      task: string;
      phase: string;
      status: TaskStatus;
      dryRun?: boolean;
      reason?: string;
      error?: string;
      details?: string;
      durationMs: number;
      /** What apply spent its time waiting on (the task's waitsFor), when it ran apply. */
      waitsFor?: string;
    }
  /** One preflight check result. */
  | { type: "check"; host: string; id: string; status: "pass" | "warn" | "fail"; message: string; ignored?: boolean }
  /** Free-form progress or information, never secrets. */
  | { type: "log"; level: "debug" | "info" | "warn" | "error"; message: string; host?: string; task?: string }
  /** Always last for commands that run tasks. */
  | { type: "summary"; changed: number; unchanged: number; failed: number; skipped: number; durationMs: number; dryRun?: boolean };

export interface Reporter {
  emit(event: KubeprovEvent): void;
  /** Flush and stop drawing (listr2). */
  close(): Promise<void>;
}

/** A reporter that keeps events in memory: for tests and for commands that summarise. */
export class MemoryReporter implements Reporter {
  readonly events: KubeprovEvent[] = [];
  emit(event: KubeprovEvent): void {
    this.events.push(event);
  }
  async close(): Promise<void> {}
}

/** Reporter that forwards to several (e.g. a terminal renderer plus a memory copy). */
export class TeeReporter implements Reporter {
  constructor(private readonly targets: Reporter[]) {}
  emit(event: KubeprovEvent): void {
    for (const t of this.targets) t.emit(event);
  }
  async close(): Promise<void> {
    for (const t of this.targets) await t.close();
  }
}
