// A test-only Transport that runs real commands on this machine with /bin/sh, each "host" rooted
// in its own temporary directory (the working directory of its commands). No mocks: commands,
// files and modes are real. Used by the engine's unit tests until they run over real transports.
import { execFile, spawn } from "node:child_process";
import { promisify } from "node:util";
import { mkdtemp, mkdir, readFile, rename, rm, writeFile, chmod } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { CommandError } from "../../provisioner/errors.js";
import type { ExecOptions, ExecResult, Transport, WriteOptions } from "../../provisioner/transport/transport.js";
import type { Host } from "../../provisioner/engine/task.js";
import { clusterSchema, type Cluster, type Role } from "../../provisioner/spec/schema.js";
import { API_VERSION, KIND_CLUSTER } from "../../provisioner/constants.js";

const run = promisify(execFile);

export class TmpTransport implements Transport {
  /** Every command this transport ran, in order (for tests that check what was executed). */
  readonly commands: string[] = [];
  closed = false;

  constructor(
    readonly host: string,
    /** Working directory of every command; tests keep their files under it. */
    readonly dir: string,
  ) {}

  exec(command: string, opts: ExecOptions = {}): Promise<ExecResult> {
    this.commands.push(command);
    return new Promise((resolve, reject) => {
      const child = spawn("/bin/sh", ["-c", command], { cwd: this.dir, stdio: ["pipe", "pipe", "pipe"] });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on("data", (d: Buffer) => out.push(d));
      child.stderr.on("data", (d: Buffer) => err.push(d));
      const timer = setTimeout(() => child.kill("SIGKILL"), opts.timeoutMs ?? 600_000);
      child.on("error", (e) => {
        clearTimeout(timer);
        reject(e);
      });
      child.on("close", (code) => {
        clearTimeout(timer);
        const res = { stdout: Buffer.concat(out).toString("utf8"), stderr: Buffer.concat(err).toString("utf8"), code: code ?? -1 };
        if (res.code !== 0 && opts.check !== false) reject(new CommandError(this.host, command, code, res.stdout, res.stderr));
        else resolve(res);
      });
      child.stdin.on("error", () => {});
      child.stdin.end(opts.stdin ?? "");
    });
  }

  async readFile(path: string): Promise<Buffer | undefined> {
    try {
      return await readFile(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }

  async writeFile(path: string, data: string | Buffer, opts: WriteOptions): Promise<void> {
    await mkdir(dirname(path), { recursive: true, mode: 0o755 });
    const tmp = join(dirname(path), `.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`);
    await writeFile(tmp, data, { mode: 0o600 });
    try {
      await chmod(tmp, opts.mode);
      if (opts.owner) await run("chown", [opts.owner, tmp]);
      await rename(tmp, path);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

/** Make N hosts (h0, h1, …), each with a TmpTransport in its own new temporary directory. */
export async function makeTmpHosts(n: number, roles: Role[] = ["control-plane"]): Promise<{ hosts: Host[]; dirs: string[]; cleanup(): Promise<void> }> {
  const hosts: Host[] = [];
  const dirs: string[] = [];
  for (let i = 0; i < n; i++) {
    const name = `h${i}`;
    const dir = await mkdtemp(join(tmpdir(), `kpt-engine-${name}-`));
    dirs.push(dir);
    hosts.push({
      name,
      address: "127.0.0.1",
      nodeIP: "127.0.0.1",
      roles,
      spec: { name, address: "127.0.0.1", roles, connection: "local" },
      transport: new TmpTransport(name, dir),
    });
  }
  return {
    hosts,
    dirs,
    async cleanup() {
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    },
  };
}

/** A valid Cluster for these hosts (parsed by the real schema, so defaults are filled). */
export function clusterFor(hosts: Host[], name = "kpt-engine"): Cluster {
  return clusterSchema.parse({
    apiVersion: API_VERSION,
    kind: KIND_CLUSTER,
    metadata: { name },
    spec: { hosts: hosts.map((h) => ({ name: h.name, address: h.address, roles: h.roles, connection: "local" })) },
  });
}
