// How a task reaches a host. Implementations: ssh.ts (ssh2, one connection per host reused for
// everything) and local.ts (execa, the machine kubeprov runs on).

export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

export interface ExecOptions {
  /** Data for the command's standard input: the only way secrets reach a command. */
  stdin?: string | Buffer;
  /** Run through sudo when the transport's user is not root (no-op for root). */
  sudo?: boolean;
  /** Kill the command after this long (default: 10 minutes). */
  timeoutMs?: number;
  /** When false, a non-zero exit is returned, not thrown (default true: throws CommandError). */
  check?: boolean;
}

export interface WriteOptions {
  /** Explicit mode, applied whatever the umask (e.g. 0o600). */
  mode: number;
  /** "user" or "user:group"; default: left as the writing user (root). */
  owner?: string;
}

export interface Transport {
  /** The host's name, as used in messages. */
  readonly host: string;
  /** Run a command with /bin/sh -c on the host. */
  exec(command: string, opts?: ExecOptions): Promise<ExecResult>;
  /** The file's content, or undefined when it does not exist. */
  readFile(path: string): Promise<Buffer | undefined>;
  /** Atomic write: temp file in the same directory, chmod/chown, then rename. Creates parent dirs (0755). */
  writeFile(path: string, data: string | Buffer, opts: WriteOptions): Promise<void>;
  close(): Promise<void>;
}

/** Quote a word for a POSIX shell. */
export function shq(word: string): string {
  if (/^[A-Za-z0-9_@%+=:,./-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
