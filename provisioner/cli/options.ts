// Options shared by commands, declared once so every command spells and checks them the same way.
// A bad value is a commander InvalidArgumentError: commander prints it and main.ts exits 2.
import { InvalidArgumentError, Option, type Command } from "commander";
import { CERTIFICATE_KEY_ENV, requireCertificateKey } from "../bootstrap/copycerts.js";

export const OUTPUT_FORMATS = ["text", "json"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/** What a command's action receives from these helpers (each only if declared). */
export interface CommonOptions {
  /** -f/--file: a cluster file, "-" for stdin. */
  file?: string;
  /** --name: a cluster made by a driver (`kubeprov up`). */
  name?: string;
  /** -o/--output. */
  output: OutputFormat;
  /** --dry-run: run checks only, change nothing. */
  dryRun?: boolean;
  /** --concurrency: how many hosts are worked on at once. */
  concurrency?: number;
  /** -v/--verbose (repeatable): 1 shows debug logs. */
  verbose?: number;
}

export const DEFAULT_CONCURRENCY = 20;

export function parseOutputFormat(value: string): OutputFormat {
  if ((OUTPUT_FORMATS as readonly string[]).includes(value)) return value as OutputFormat;
  throw new InvalidArgumentError(`must be one of ${OUTPUT_FORMATS.join(", ")} (got "${value}")`);
}

export function parsePositiveInt(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value)))
    throw new InvalidArgumentError(`must be a positive whole number (got "${value}")`);
  return Number(value);
}

/** -f/--file FILE and --name NAME (exactly one of them is checked by loadTarget). */
export function targetOptions(cmd: Command): Command {
  return cmd
    .option("-f, --file <file>", 'cluster file ("-" reads standard input)')
    .option("--name <name>", "a cluster made by `kubeprov up` (its file under the kubeprov state directory)");
}

export function outputOption(cmd: Command): Command {
  return cmd.addOption(
    new Option("-o, --output <format>", "output format: text or json").choices(OUTPUT_FORMATS).argParser(parseOutputFormat).default("text"),
  );
}

export function dryRunOption(cmd: Command): Command {
  return cmd.option("--dry-run", "run the checks only and print what would change; change nothing", false);
}

export function concurrencyOption(cmd: Command): Command {
  return cmd.option("--concurrency <n>", `how many hosts to work on at once (default ${DEFAULT_CONCURRENCY})`, parsePositiveInt);
}

export function verboseOption(cmd: Command): Command {
  return cmd.option("-v, --verbose", "more output (debug logs); repeat for more", (_v: string, prev: number) => prev + 1, 0);
}

export function timingsOption(cmd: Command): Command {
  return cmd.option("--timings", "at the end, print each phase's start and duration, the critical path and what the run waited on (stderr)", false);
}

/** The usual set for commands that run tasks on a cluster's hosts. */
export function runOptions(cmd: Command, which: { dryRun?: boolean; concurrency?: boolean } = {}): Command {
  targetOptions(cmd);
  outputOption(cmd);
  if (which.dryRun !== false) dryRunOption(cmd);
  if (which.concurrency !== false) concurrencyOption(cmd);
  verboseOption(cmd);
  timingsOption(cmd);
  return cmd;
}

/**
 * The certificate key of a run: --certificate-key, else the environment variable (which keeps it
 * out of argv, where ps shows it). Validated (64 hex characters), else a UsageError naming where
 * it came from; undefined when neither is set.
 */
export function certificateKeyOption(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (flag !== undefined) {
    requireCertificateKey(flag, "--certificate-key");
    return flag.trim().toLowerCase();
  }
  const v = env[CERTIFICATE_KEY_ENV];
  if (v === undefined || v === "") return undefined;
  requireCertificateKey(v, CERTIFICATE_KEY_ENV);
  return v.trim().toLowerCase();
}
