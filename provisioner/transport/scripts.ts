// The shell side of file operations, shared by the SSH and local transports so both behave the
// same. Data always travels on stdin; only paths, sizes, modes and owners appear in the command.
import { dirname, basename } from "node:path/posix";
import { shq, type ExecResult } from "./transport.js";
import { CommandError } from "../errors.js";

/** Exit code of the read script when the file does not exist. */
export const READ_MISSING_CODE = 44;

/** Wrap a command to run through sudo (non-interactive; stdin passes through). */
export function sudoWrap(command: string): string {
  return `sudo -n sh -c ${shq(command)}`;
}

/** Print a file, or exit READ_MISSING_CODE when it does not exist. */
export function readScript(path: string): string {
  return `test -e ${shq(path)} || exit ${READ_MISSING_CODE}; exec cat ${shq(path)}`;
}

/**
 * Atomic write: stdin goes to a private temp file in the target directory; only when exactly
 * `size` bytes arrived (a connection killed mid-way gives cat an early end of file) is it
 * chmod/chown-ed and renamed over the target. Otherwise the temp file is removed and the target
 * is untouched. Parent directories are created 0755.
 */
export function writeScript(path: string, size: number, mode: number, owner?: string): string {
  if (!path.startsWith("/")) throw new Error(`writeFile needs an absolute path, got ${path}`);
  if (owner !== undefined && !/^[A-Za-z0-9_.][A-Za-z0-9_.-]*(:[A-Za-z0-9_.][A-Za-z0-9_.-]*)?$/.test(owner)) {
    throw new Error(`invalid owner ${JSON.stringify(owner)} (want "user" or "user:group")`);
  }
  const dir = dirname(path);
  const name = basename(path);
  const modeStr = (mode & 0o7777).toString(8).padStart(4, "0");
  return [
    "set -eu",
    `d=${shq(dir)}`,
    "(umask 022; mkdir -p \"$d\")",
    "umask 077",
    `t=$(mktemp "$d"/${shq(`.${name}.kubeprov-tmp.`)}XXXXXX)`,
    `trap 'rm -f "$t"' EXIT`,
    "trap 'exit 129' HUP INT TERM PIPE",
    'cat > "$t"',
    'got=$(wc -c < "$t")',
    `if [ "$((got))" -ne ${size} ]; then echo "short write: received $((got)) of ${size} bytes" >&2; exit 75; fi`,
    `chmod ${modeStr} "$t"`,
    ...(owner ? [`chown ${shq(owner)} "$t"`] : []),
    `mv -f "$t" ${shq(path)}`,
    "trap - EXIT",
  ].join("\n");
}

/** What a transport's exec turns its raw process result into: a result, or a CommandError (timeout, non-zero exit unless check is false). */
export function execOutcome(
  host: string,
  command: string,
  raw: { stdout: Buffer; stderr: Buffer; code: number | null; timedOut: boolean },
  timeoutMs: number,
  check: boolean | undefined,
): ExecResult {
  const res: ExecResult = { stdout: raw.stdout.toString("utf8"), stderr: raw.stderr.toString("utf8"), code: raw.code ?? -1 };
  if (raw.timedOut) {
    const err = new CommandError(host, command, null, res.stdout, res.stderr);
    err.message = `${host}: command timed out after ${timeoutMs} ms and was killed: ${command.length > 300 ? `${command.slice(0, 300)}…` : command}`;
    throw err;
  }
  if (res.code !== 0 && check !== false) throw new CommandError(host, command, raw.code, res.stdout, res.stderr);
  return res;
}
