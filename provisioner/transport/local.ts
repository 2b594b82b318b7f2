// LocalTransport: the machine kubeprov runs on, reached with execa instead of SSH. Same semantics
// as SshTransport: /bin/sh -c, sudo when not root, stdin for data, atomic writes (the same scripts).
import { userInfo } from "node:os";
import { execa } from "execa";
import { CommandError } from "../errors.js";
import type { ExecOptions, ExecResult, Transport, WriteOptions } from "./transport.js";
import { execOutcome, READ_MISSING_CODE, readScript, sudoWrap, writeScript } from "./scripts.js";

const DEFAULT_EXEC_TIMEOUT_MS = 10 * 60_000;

interface RawResult {
  stdout: Buffer;
  stderr: Buffer;
  code: number | null;
  timedOut: boolean;
}

export class LocalTransport implements Transport {
  readonly user: string;
  constructor(readonly host: string) {
    this.user = userInfo().username;
  }

  private get isRoot(): boolean {
    return process.getuid?.() === 0;
  }

  private wrap(command: string, sudo: boolean | undefined): string {
    return sudo && !this.isRoot ? sudoWrap(command) : command;
  }

  private async run(command: string, stdin: string | Buffer | undefined, timeoutMs: number): Promise<RawResult> {
    // Own process group, so a time-out kills the command and everything it started.
    const sub = execa("/bin/sh", ["-c", command], {
      input: stdin === undefined ? "" : stdin,
      reject: false,
      detached: true,
      encoding: "buffer",
      stripFinalNewline: false,
      maxBuffer: 1024 * 1024 * 1024,
    });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (sub.pid) process.kill(-sub.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
    }, timeoutMs);
    try {
      const r = await sub;
      return {
        stdout: Buffer.from(r.stdout as Uint8Array),
        stderr: Buffer.from(r.stderr as Uint8Array),
        code: r.exitCode ?? null,
        timedOut,
      };
    } finally {
      clearTimeout(timer);
    }
  }

  async exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    const timeoutMs = opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
    const r = await this.run(this.wrap(command, opts.sudo), opts.stdin, timeoutMs);
    return execOutcome(this.host, command, r, timeoutMs, opts.check);
  }

  async readFile(path: string): Promise<Buffer | undefined> {
    const r = await this.run(this.wrap(readScript(path), true), undefined, DEFAULT_EXEC_TIMEOUT_MS);
    if (r.code === READ_MISSING_CODE) return undefined;
    if (r.code !== 0) throw new CommandError(this.host, `cat ${path}`, r.code, "", r.stderr.toString("utf8"));
    return r.stdout;
  }

  async writeFile(path: string, data: string | Buffer, opts: WriteOptions): Promise<void> {
    const buf = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    const r = await this.run(this.wrap(writeScript(path, buf.length, opts.mode, opts.owner), true), buf, DEFAULT_EXEC_TIMEOUT_MS);
    if (r.code !== 0) {
      throw new CommandError(this.host, `write ${path} (${buf.length} bytes, mode ${opts.mode.toString(8)})`, r.code, "", r.stderr.toString("utf8"));
    }
  }

  async close(): Promise<void> {}
}
