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

/** A write target's directory, file name and octal mode; throws for a relative path or a bad owner. */
function checkedTarget(path: string, mode: number, owner?: string): [string, string, string] {
  if (!path.startsWith("/")) throw new Error(`writeFile needs an absolute path, got ${path}`);
  if (owner !== undefined && !/^[A-Za-z0-9_.][A-Za-z0-9_.-]*(:[A-Za-z0-9_.][A-Za-z0-9_.-]*)?$/.test(owner)) {
    throw new Error(`invalid owner ${JSON.stringify(owner)} (want "user" or "user:group")`);
  }
  return [dirname(path), basename(path), (mode & 0o7777).toString(8).padStart(4, "0")];
}

/**
 * Atomic write: stdin goes to a private temp file in the target directory; only when exactly
 * `size` bytes arrived (a connection killed mid-way gives cat an early end of file) is it
 * chmod/chown-ed and renamed over the target. Otherwise the temp file is removed and the target
 * is untouched. Parent directories are created 0755.
 */
export function writeScript(path: string, size: number, mode: number, owner?: string): string {
  const [dir, name, modeStr] = checkedTarget(path, mode, owner);
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

/** What readFilesScript says of one path: its content, missing (undefined), or why it cannot be read. */
export type ReadOutcome = Buffer | undefined | Error;

/**
 * Several files read in one command (one round trip instead of one per file), with a handful of
 * processes whatever the number of files: a line per path, in order, "F" (a file, read), "M"
 * (missing), "D" (a directory) or "E" (unreadable); then, when any was read, each read file's size
 * (one `stat` for all), a line "@@" and their contents one after another, base64 (one `cat`).
 */
export function readFilesScript(paths: string[]): string {
  return [
    "set --",
    `for f in ${paths.map(shq).join(" ")}; do`,
    '  if [ -d "$f" ]; then echo D; elif [ ! -e "$f" ]; then echo M; elif [ -r "$f" ]; then echo F; set -- "$@" "$f"; else echo E; fi',
    "done",
    `if [ $# -gt 0 ]; then stat -L -c %s -- "$@" && echo @@ && cat -- "$@" | base64 | tr -d '\\n' && echo; fi`,
  ].join("\n");
}

/** The answer of readFilesScript, by path; throws when it does not fit the paths (or a file changed size while read). */
export function parseReadFiles(paths: string[], stdout: string): Map<string, ReadOutcome> {
  const lines = stdout.split("\n");
  const classes = lines.slice(0, paths.length);
  if (classes.length !== paths.length || classes.some((c) => !["F", "M", "D", "E"].includes(c))) {
    throw new Error(`reading ${paths.length} files gave an answer that does not fit them`);
  }
  const read = classes.filter((c) => c === "F").length;
  const sizes = lines.slice(paths.length, paths.length + read).map(Number);
  const data = read ? Buffer.from(lines[paths.length + read + 1] ?? "", "base64") : Buffer.alloc(0);
  if (read && (lines[paths.length + read] !== "@@" || sizes.some((n) => !Number.isInteger(n) || n < 0) || sizes.reduce((a, n) => a + n, 0) !== data.length)) {
    throw new Error(`reading ${paths.length} files: their sizes and contents do not match (a file changed while it was read?)`);
  }
  const out = new Map<string, ReadOutcome>();
  let at = 0;
  let k = 0;
  paths.forEach((p, i) => {
    const c = classes[i]!;
    if (c === "F") {
      const n = sizes[k++]!;
      out.set(p, data.subarray(at, at + n));
      at += n;
    } else if (c === "M") out.set(p, undefined);
    else out.set(p, new Error(c === "D" ? "is a directory" : "cannot be read"));
  });
  return out;
}

/**
 * Several files written in one command, each as writeScript writes one: every file goes first to a
 * private temp file in its directory, checked against its size, chmod/chown-ed; only when all of
 * them arrived are they renamed into place, in the order given. On any failure every temp file is
 * removed and no target is touched. Stdin carries each file's content as one base64 line (see
 * writeFilesInput).
 */
export function writeFilesScript(files: Array<{ path: string; size: number; mode: number; owner?: string }>): string {
  const tmp = files.map((_, i) => `t${i}`);
  const lines = [
    "set -eu",
    "umask 077",
    tmp.map((t) => `${t}=`).join("; "),
    `trap 'for t in ${tmp.map((t) => `"$${t}"`).join(" ")}; do [ -z "$t" ] || rm -f "$t"; done' EXIT`,
    "trap 'exit 129' HUP INT TERM PIPE",
  ];
  files.forEach((f, i) => {
    const [dir, name, modeStr] = checkedTarget(f.path, f.mode, f.owner);
    lines.push(
      `d=${shq(dir)}`,
      '(umask 022; mkdir -p "$d")',
      `t${i}=$(mktemp "$d"/${shq(`.${name}.kubeprov-tmp.`)}XXXXXX)`,
      "IFS= read -r line",
      `printf '%s' "$line" | base64 -d > "$t${i}"`,
      `got=$(wc -c < "$t${i}")`,
      `if [ "$((got))" -ne ${f.size} ]; then echo ${shq(`short write: ${f.path}: received`)} "$((got))" ${shq(`of ${f.size} bytes`)} >&2; exit 75; fi`,
      `chmod ${modeStr} "$t${i}"`,
      ...(f.owner ? [`chown ${shq(f.owner)} "$t${i}"`] : []),
    );
  });
  files.forEach((f, i) => lines.push(`mv -f "$t${i}" ${shq(f.path)}`, `t${i}=`));
  lines.push("trap - EXIT");
  return lines.join("\n");
}

/** Stdin for writeFilesScript: each file's content as one base64 line. */
export function writeFilesInput(data: Buffer[]): string {
  return data.map((d) => `${d.toString("base64")}\n`).join("");
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
