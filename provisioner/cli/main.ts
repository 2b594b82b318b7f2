// The CLI entry: declares commands (each in commands/<name>.ts), maps errors to exit codes in one
// place, and returns the code; only bin/kubeprov.js sets process.exitCode.
import { Command, CommanderError } from "commander";
import { exitCodeOf, isKubeprovError } from "../errors.js";
import { COMMANDS } from "./commands/index.js";
import { enableTimings } from "../output/timings.js";

export function buildProgram(): Command {
  const program = new Command("kubeprov")
    .description("Declarative Kubernetes cluster provisioner: kubeadm and minikube in one tool")
    .version(process.env.npm_package_version ?? "0.1.0", "--version")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride()
    .configureOutput({
      writeOut: (s) => process.stdout.write(s),
      writeErr: (s) => process.stderr.write(s),
    });
  for (const register of COMMANDS) register(program);
  // --timings (commands that run tasks) turns on the report of where the run's seconds went.
  program.hook("preAction", (_program, action) => {
    if (action.opts()["timings"] === true) enableTimings();
  });
  // Every sub-command reports usage errors the same way (exit 2), never calls process.exit.
  const harden = (c: Command) => {
    c.exitOverride();
    c.showHelpAfterError("(run with --help for usage)");
    c.commands.forEach(harden);
  };
  program.commands.forEach(harden);
  return program;
}

export async function run(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return typeof process.exitCode === "number" ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === "commander.helpDisplayed" || e.code === "commander.version" || e.code === "commander.help") return 0;
      // commander already printed the message.
      return 2;
    }
    printError(e);
    return exitCodeOf(e);
  }
}

export function printError(e: unknown): void {
  if (isKubeprovError(e)) {
    const problems = (e as { problems?: string[] }).problems;
    if (problems && problems.length > 1) {
      process.stderr.write(`error: ${problems.length} problems\n`);
      for (const p of problems) process.stderr.write(`  ${p}\n`);
    } else {
      process.stderr.write(`error: ${problems?.[0] ?? e.message}\n`);
    }
    if (e.details) process.stderr.write(indent(e.details) + "\n");
    return;
  }
  const err = e as Error;
  process.stderr.write(`error: ${err?.message ?? String(e)}\n`);
  if (process.env.KUBEPROV_DEBUG && err?.stack) process.stderr.write(err.stack + "\n");
}

function indent(s: string): string {
  return s
    .split("\n")
    .map((l) => `    ${l}`)
    .join("\n");
}
