// The PKI store on a host: PkiStore (pki/store.ts) through the host's Transport (SSH or local:
// atomic writes with explicit modes). The certs tasks, the `certs` commands and status read and
// write a host's certificates through it.
import { shq, type Transport } from "../transport/transport.js";
import type { FileWrite } from "../pki/materialize.js";
import type { PkiStore } from "../pki/store.js";
import { parseReadFiles, readFilesScript, writeFilesInput, writeFilesScript, type ReadOutcome } from "../transport/scripts.js";

export class TransportStore implements PkiStore {
  constructor(readonly transport: Transport) {}
  get where(): string {
    return this.transport.host;
  }
  read(path: string): Promise<Buffer | undefined> {
    return this.transport.readFile(path);
  }
  write(path: string, data: Buffer, mode: number): Promise<void> {
    return this.transport.writeFile(path, data, { mode });
  }
  // A node's PKI is some thirty files: read and written in one command each way, so a run pays one
  // round trip to the host for them, not one per file.
  async readMany(paths: string[]): Promise<Map<string, ReadOutcome>> {
    if (!paths.length) return new Map();
    const r = await this.transport.exec(readFilesScript(paths), { sudo: true });
    return parseReadFiles(paths, r.stdout);
  }
  async writeMany(writes: FileWrite[]): Promise<void> {
    if (!writes.length) return;
    await this.transport.exec(writeFilesScript(writes.map((w) => ({ path: w.path, size: w.data.length, mode: w.mode }))), {
      sudo: true,
      stdin: writeFilesInput(writes.map((w) => w.data)),
    });
  }
  async checkDir(path: string): Promise<string | undefined> {
    const p = shq(path);
    const r = await this.transport.exec(
      `d=${p}; while [ ! -e "$d" ] && [ "$d" != / ]; do d=$(dirname "$d"); done; if [ -e "$d" ] && [ ! -d "$d" ]; then echo "$d"; fi`,
      { sudo: true },
    );
    const bad = r.stdout.trim();
    return bad ? `${bad} is not a directory` : undefined;
  }
  async modes(paths: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (!paths.length) return out;
    // Answers by index, so the paths never need to be parsed back.
    const r = await this.transport.exec(`i=0; for f in ${paths.map(shq).join(" ")}; do if [ -f "$f" ]; then echo "$i $(stat -c %a -- "$f")"; fi; i=$((i+1)); done`, { sudo: true });
    for (const line of r.stdout.split("\n")) {
      const m = /^(\d+) ([0-7]+)$/.exec(line.trim());
      if (m && paths[Number(m[1])] !== undefined) out.set(paths[Number(m[1])]!, parseInt(m[2]!, 8));
    }
    return out;
  }
  async chmod(path: string, mode: number): Promise<void> {
    await this.transport.exec(`chmod ${(mode & 0o7777).toString(8).padStart(4, "0")} ${shq(path)}`, { sudo: true });
  }
}
