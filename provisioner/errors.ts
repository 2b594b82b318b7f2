// Errors are classes with a code; the exit code is decided in one place (exitCodeOf), and only
// the CLI entry point sets process.exitCode.

export abstract class KubeprovError extends Error {
  abstract readonly exitCode: 1 | 2;
  /** Extra lines shown under the message (a log tail, a hint). Never secrets. */
  details?: string;
}

/** A problem in the cluster file or its values: exit 2, nothing touched on any host. */
export class ConfigError extends KubeprovError {
  readonly exitCode = 2 as const;
  constructor(
    message: string,
    /** Every individual problem, each already formatted as `file:line:col path: message`. */
    readonly problems: string[] = [message],
  ) {
    super(message);
    this.name = "ConfigError";
  }
}

/** Wrong command line: exit 2. */
export class UsageError extends KubeprovError {
  readonly exitCode = 2 as const;
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Something failed on a host (or in a driver) while running a task: exit 1. */
export class HostError extends KubeprovError {
  readonly exitCode = 1 as const;
  constructor(
    readonly host: string,
    readonly task: string | undefined,
    message: string,
    details?: string,
  ) {
    super(`${host}${task ? ` [${task}]` : ""}: ${message}`);
    this.name = "HostError";
    this.details = details;
  }
}

/** A remote or local command exited non-zero. Carries the evidence (command, code, stderr). */
export class CommandError extends KubeprovError {
  readonly exitCode = 1 as const;
  constructor(
    readonly host: string,
    /** The command as run. Commands never carry secrets: secrets travel on stdin. */
    readonly command: string,
    readonly code: number | null,
    readonly stdout: string,
    readonly stderr: string,
  ) {
    super(`${host}: command failed (exit ${code ?? "signal"}): ${truncate(command, 300)}`);
    this.name = "CommandError";
    const tail = lastLines(stderr.trim() || stdout.trim(), 20);
    this.details = tail || undefined;
  }
}

/** Any other failure that is not about a host (a local tool, the driver): exit 1. */
export class RuntimeFailure extends KubeprovError {
  readonly exitCode = 1 as const;
  constructor(message: string, details?: string) {
    super(message);
    this.name = "RuntimeFailure";
    this.details = details;
  }
}

export function isKubeprovError(e: unknown): e is KubeprovError {
  return e instanceof KubeprovError;
}

export function exitCodeOf(e: unknown): 1 | 2 {
  return isKubeprovError(e) ? e.exitCode : 1;
}

export function lastLines(text: string, n: number): string {
  const lines = text.split("\n");
  return lines.slice(Math.max(0, lines.length - n)).join("\n");
}

export function truncate(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max)}…`;
}

/** One task that failed on one host, as RunFailed lists it. */
export interface FailedTask {
  host: string;
  task: string;
  error?: string;
  details?: string;
}

/** A run of tasks finished with failures: exit 1. The message names each failed host and task. */
export class RunFailed extends KubeprovError {
  readonly exitCode = 1 as const;
  constructor(readonly failures: FailedTask[]) {
    const n = failures.length;
    const lines = failures.map((f) => `  ${f.host} [${f.task}]: ${truncate((f.error ?? "failed").split("\n")[0], 300)}`);
    super(`${n} task${n === 1 ? "" : "s"} failed:\n${lines.join("\n")}`);
    this.name = "RunFailed";
    const tails = failures
      .filter((f) => f.details)
      .slice(0, 5)
      .map((f) => `${f.host} [${f.task}]:\n${lastLines(f.details!.trim(), 10)}`);
    this.details = tails.length > 0 ? tails.join("\n") : undefined;
  }
}
