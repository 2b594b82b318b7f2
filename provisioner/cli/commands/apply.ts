import type { Command } from "commander";
import { notImplemented } from "../notyet.js";

export function register(program: Command): void {
  program
    .command("apply")
    .description("apply (not implemented yet)")
    .action(() => notImplemented("apply"));
}
