// A lock between kubeprov processes on this machine: a file created with O_EXCL holding the
// owner's PID; stale (and taken over) when that PID is gone. Used where two `up`s could race on
// something Docker does not serialize (creating the node image; creating a network: Docker allows
// two networks with the same name).
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { RuntimeFailure } from "../errors.js";

export async function withFileLock<T>(path: string, fn: () => Promise<T>, opts: { timeoutMs?: number; onWait?: (ownerPid: number) => void } = {}): Promise<T> {
  mkdirSync(dirname(path), { recursive: true });
  const deadline = Date.now() + (opts.timeoutMs ?? 30 * 60_000);
  let told = false;
  for (;;) {
    try {
      const fd = openSync(path, "wx", 0o644);
      writeFileSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
      let owner = 0;
      try {
        owner = Number(readFileSync(path, "utf8").trim());
      } catch {
        continue; // released between open and read
      }
      if (!owner) {
        // Created but the PID not written yet: give the owner a moment.
        await sleep(50);
        owner = Number(readFileSync(path, "utf8").trim() || "0");
      }
      if (!owner || !pidAlive(owner)) {
        rmSync(path, { force: true });
        continue;
      }
      if (!told) opts.onWait?.(owner);
      told = true;
      if (Date.now() > deadline) throw new RuntimeFailure(`lock ${path} is held by pid ${owner}`);
      await sleep(100);
    }
  }
  try {
    return await fn();
  } finally {
    rmSync(path, { force: true });
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
