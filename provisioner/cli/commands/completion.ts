import type { Command } from "commander";
import { notImplemented } from "../notyet.js";

export function register(program: Command): void {
  program
    .command("completion")
    .description("completion (not implemented yet)")
    .action(() => notImplemented("completion"));
}
