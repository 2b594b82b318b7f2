// -o json: one JSON object per event, one per line, on stdout; the summary event comes last.
import type { KubeprovEvent, Reporter } from "../events.js";

export class JsonLinesReporter implements Reporter {
  constructor(private readonly out: NodeJS.WritableStream = process.stdout) {}

  emit(event: KubeprovEvent): void {
    this.out.write(JSON.stringify(event) + "\n");
  }

  async close(): Promise<void> {
    await flush(this.out);
  }
}

/** Resolves once what was written so far is handed to the OS (so exit codes do not cut output). */
export function flush(out: NodeJS.WritableStream): Promise<void> {
  return new Promise((resolve) => {
    if (!out.write("", () => resolve())) out.once("drain", () => resolve());
  });
}
