// Where PKI files are read from and written to. FsStore is the contract on the local filesystem
// with node:fs, for offline commands (`certs generate --cert-dir`) and the benchmark; the store on
// a host (through its Transport) is the certs tasks' (tasks/certs-store.ts), so PKI reaches no host.
import { chmod, lstat, mkdir, open, readFile, rename, rm, stat } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { dirname, basename, join } from "node:path";
import type { FileWrite } from "./materialize.js";
import type { Snapshot } from "./plan.js";

export interface PkiStore {
  /** Name for messages (host name or "local"). */
  readonly where: string;
  read(path: string): Promise<Buffer | undefined>;
  write(path: string, data: Buffer, mode: number): Promise<void>;
  /** A problem with a directory kubeprov must write into (e.g. it is a file), or undefined. */
  checkDir(path: string): Promise<string | undefined>;
  /** Permission bits of the files that exist among paths. */
  modes(paths: string[]): Promise<Map<string, number>>;
  chmod(path: string, mode: number): Promise<void>;
  /** Many reads at once (a store on a host: one command); a path's failure is an Error in the map. */
  readMany?(paths: string[]): Promise<Map<string, Buffer | undefined | Error>>;
  /** Many writes at once, each atomic, moved into place in the order given (a store on a host: one command). */
  writeMany?(writes: FileWrite[]): Promise<void>;
}

export class FsStore implements PkiStore {
  readonly where = "local";
  async read(path: string): Promise<Buffer | undefined> {
    try {
      return await readFile(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
      throw e;
    }
  }
  async write(path: string, data: Buffer, mode: number): Promise<void> {
    const dir = dirname(path);
    await mkdir(dir, { recursive: true, mode: 0o755 });
    const tmp = join(dir, `.${basename(path)}.kubeprov-tmp.${randomBytes(6).toString("hex")}`);
    const fh = await open(tmp, "wx", 0o600);
    try {
      await fh.writeFile(data);
      await fh.chmod(mode);
      await fh.sync();
    } catch (e) {
      await fh.close().catch(() => {});
      await rm(tmp, { force: true });
      throw e;
    }
    await fh.close();
    try {
      await rename(tmp, path);
    } catch (e) {
      await rm(tmp, { force: true });
      throw e;
    }
    await chmod(path, mode);
  }
  async modes(paths: string[]): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    await Promise.all(
      paths.map(async (p) => {
        const st = await stat(p).catch(() => undefined);
        if (st?.isFile()) out.set(p, st.mode & 0o7777);
      }),
    );
    return out;
  }
  async chmod(path: string, mode: number): Promise<void> {
    await chmod(path, mode);
  }
  async checkDir(path: string): Promise<string | undefined> {
    // The nearest existing ancestor (or the path itself) must be a directory.
    for (let d = path; ; d = dirname(d)) {
      try {
        const s = await lstat(d);
        if (s.isDirectory()) return undefined;
        if (s.isSymbolicLink() && (await stat(d).catch(() => undefined))?.isDirectory()) return undefined;
        return `${d} is not a directory`;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== "ENOENT" && code !== "ENOTDIR") throw e;
        if (dirname(d) === d) return undefined;
      }
    }
  }
}


/** Reads every path (in parallel); unreadable files become Errors in the snapshot, not exceptions. */
export async function readSnapshot(store: PkiStore, paths: string[]): Promise<Snapshot> {
  if (store.readMany) return new Map(await store.readMany(paths));
  const snap: Snapshot = new Map();
  await Promise.all(
    paths.map(async (p) => {
      try {
        snap.set(p, await store.read(p));
      } catch (e) {
        const err = e as NodeJS.ErrnoException & { details?: string };
        snap.set(p, new Error(err.code ? `${err.code === "EISDIR" ? "is a directory" : err.code}` : firstLine(err.details || err.message)));
      }
    }),
  );
  return snap;
}

function firstLine(s: string): string {
  return s.split("\n").find((l) => l.trim())?.trim() ?? s;
}

/** Writes the CA files first (in order), then the rest in parallel. Each file is atomic. */
export async function writeAll(store: PkiStore, writes: FileWrite[], isCAFile: (path: string) => boolean): Promise<void> {
  if (store.writeMany) return store.writeMany([...writes.filter((w) => isCAFile(w.path)), ...writes.filter((w) => !isCAFile(w.path))]);
  for (const w of writes.filter((w) => isCAFile(w.path))) await store.write(w.path, w.data, w.mode);
  await Promise.all(writes.filter((w) => !isCAFile(w.path)).map((w) => store.write(w.path, w.data, w.mode)));
}
