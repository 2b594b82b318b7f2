// Terminal renderer: listr2 draws one line per host that updates in place (the tasks running on it
// and its counts), and a header that becomes the summary. Hosts appear as their first event
// arrives. Failure details, warnings and failed checks are printed in full once drawing stops.
import { Listr, type ListrTaskWrapper } from "listr2";
import type { KubeprovEvent, Reporter } from "../events.js";
import { formatCheck, formatLog, formatSummary, formatTask, taskLabel } from "./format.js";

interface HostLine {
  name: string;
  running: Set<string>;
  changed: number;
  ok: number;
  failed: number;
  skipped: number;
  firstFailure?: string;
  wrapper?: ListrTaskWrapper<unknown, any, any>;
  finish: (error?: Error) => void;
  done: Promise<void>;
  run?: Promise<void>;
}

type AnyListr = Listr<unknown, "default", "simple">;

export class ListrReporter implements Reporter {
  private readonly listr: AnyListr;
  private readonly hosts = new Map<string, HostLine>();
  private readonly pending: HostLine[] = [];
  private readonly afterwards: string[] = [];
  private started = false;
  private dryRun = false;
  private header?: ListrTaskWrapper<unknown, any, any>;
  private endHeader!: () => void;
  private readonly headerDone = new Promise<void>((r) => (this.endHeader = r));
  private readonly running: Promise<unknown>;
  private summary?: Extract<KubeprovEvent, { type: "summary" }>;
  private finishing?: Promise<void>;

  constructor(private readonly verbose = 0) {
    this.listr = new Listr<unknown, "default", "simple">(
      [
        {
          title: "kubeprov: running",
          task: async (_ctx, task) => {
            this.header = task;
            this.started = true;
            for (const h of this.pending.splice(0)) this.start(h);
            await this.headerDone;
            if (this.summary) task.title = formatSummary(this.summary);
            if (this.summary?.failed) throw new Error(formatSummary(this.summary));
          },
        },
      ],
      {
        concurrent: true,
        exitOnError: false,
        registerSignalListeners: false,
        rendererOptions: { collapseErrors: false, showErrorMessage: true, formatOutput: "truncate" },
      },
    );
    this.running = this.listr.run().catch(() => undefined);
  }

  emit(event: KubeprovEvent): void {
    switch (event.type) {
      case "task-start": {
        const h = this.host(event.host);
        h.running.add(taskLabel(event));
        this.redraw(h);
        break;
      }
      case "task": {
        const h = this.host(event.host);
        h.running.delete(taskLabel(event));
        if (event.dryRun) this.dryRun = true;
        if (event.status === "changed") h.changed++;
        else if (event.status === "ok") h.ok++;
        else if (event.status === "skipped") h.skipped++;
        else {
          h.failed++;
          h.firstFailure ??= `${taskLabel(event)}: ${event.error ?? "failed"}`;
          this.afterwards.push(formatTask(event));
        }
        this.redraw(h);
        break;
      }
      case "check": {
        if (event.status !== "pass" || this.verbose > 0) this.afterwards.push(formatCheck(event));
        const h = this.host(event.host);
        if (h.wrapper) h.wrapper.output = formatCheck(event);
        break;
      }
      case "log": {
        if (event.level === "debug" && this.verbose === 0) break;
        if (event.level === "warn" || event.level === "error") this.afterwards.push(formatLog(event));
        const h = event.host ? this.host(event.host) : undefined;
        if (h?.wrapper) h.wrapper.output = event.message;
        else if (this.header) this.header.output = event.message;
        break;
      }
      case "summary":
        this.summary = event;
        void this.finish();
        break;
    }
  }

  async close(): Promise<void> {
    await this.finish();
    await this.running;
    for (const line of this.afterwards) process.stdout.write(line + "\n");
  }

  private host(name: string): HostLine {
    let h = this.hosts.get(name);
    if (h) return h;
    let finish!: (error?: Error) => void;
    const done = new Promise<void>((resolve, reject) => (finish = (e) => (e ? reject(e) : resolve())));
    done.catch(() => undefined);
    h = { name, running: new Set(), changed: 0, ok: 0, failed: 0, skipped: 0, finish, done };
    this.hosts.set(name, h);
    if (this.started) this.start(h);
    else this.pending.push(h);
    return h;
  }

  private start(h: HostLine): void {
    this.listr.add({
      title: h.name,
      task: async (_ctx, task) => {
        h.wrapper = task;
        this.redraw(h);
        await h.done;
      },
    });
    const t = this.listr.tasks[this.listr.tasks.length - 1];
    // listr2 runs the tasks it had when run() began; a host seen later is started here, the same
    // way Listr.run starts each of its tasks.
    h.run = (this.listr as unknown as { runTask(t: unknown): Promise<void> }).runTask(t).catch(() => undefined);
  }

  private redraw(h: HostLine): void {
    if (!h.wrapper) return;
    const counts = `${h.changed} ${this.dryRun ? "would change" : "changed"}, ${h.ok} unchanged${h.failed ? `, ${h.failed} failed` : ""}${h.skipped ? `, ${h.skipped} skipped` : ""}`;
    const now = [...h.running];
    h.wrapper.title = now.length ? `${h.name}: ${now.slice(0, 3).join(", ")}${now.length > 3 ? ` +${now.length - 3}` : ""} (${counts})` : `${h.name}: ${counts}`;
  }

  private finish(): Promise<void> {
    this.finishing ??= (async () => {
      // Let a host seen before the header started get its task.
      while (!this.started) await new Promise((r) => setTimeout(r, 5));
      for (const h of this.hosts.values()) {
        h.running.clear();
        this.redraw(h);
        h.finish(h.failed ? new Error(`${h.name}: ${h.firstFailure}`) : undefined);
      }
      await Promise.all([...this.hosts.values()].map((h) => h.run));
      this.endHeader();
    })();
    return this.finishing;
  }
}
