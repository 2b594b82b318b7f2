// kubeprov config print-defaults | validate | view: the cluster file, without touching any host.
import type { Command } from "commander";
import { stringify } from "yaml";
import { ConfigError } from "../../errors.js";
import { defaultsText } from "../../spec/defaults.js";
import { loadTarget } from "../target.js";
import { outputOption, targetOptions, type CommonOptions } from "../options.js";

export function register(program: Command): void {
  const config = program
    .command("config")
    .description("print, check and show cluster files (touches no host)");

  config
    .command("print-defaults")
    .description("print a complete, commented cluster file with every field and its default")
    .action(() => {
      process.stdout.write(defaultsText());
    });

  outputOption(
    targetOptions(
      config
        .command("validate")
        .description("check a cluster file: syntax, fields, values and consistency; exit 2 listing every problem"),
    ),
  ).action(async (opts: CommonOptions) => {
    let loaded: Awaited<ReturnType<typeof loadTarget>>;
    try {
      loaded = await loadTarget(opts);
    } catch (e) {
      // -o json: one document on stdout saying what is wrong; the error still goes to stderr (exit 2).
      if (opts.output === "json" && e instanceof ConfigError) {
        const source = opts.file === "-" ? "<stdin>" : (opts.file ?? opts.name);
        process.stdout.write(JSON.stringify({ source, valid: false, problems: e.problems }) + "\n");
      }
      throw e;
    }
    const { cluster, source } = loaded;
    const n = cluster.spec.hosts.length;
    if (opts.output === "json") process.stdout.write(JSON.stringify({ source, valid: true, hosts: n }) + "\n");
    else process.stdout.write(`${source}: valid (${n} host${n === 1 ? "" : "s"})\n`);
  });

  outputOption(
    targetOptions(
      config
        .command("view")
        .description("print the effective cluster file: the given one with every default filled in (YAML; -o json for JSON)"),
    ),
  ).action(async (opts: CommonOptions) => {
    const { cluster } = await loadTarget(opts);
    if (opts.output === "json") process.stdout.write(JSON.stringify(cluster, null, 2) + "\n");
    else process.stdout.write(stringify(cluster, { lineWidth: 0 }));
  });
}
