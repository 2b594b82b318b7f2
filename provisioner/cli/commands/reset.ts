import type { Command } from "commander";
import { notImplemented } from "../notyet.js";

export function register(program: Command): void {
  program
    .command("reset")
    .description("reset (not implemented yet)")
    .action(() => notImplemented("reset"));
}
