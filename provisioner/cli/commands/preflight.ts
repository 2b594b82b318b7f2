import type { Command } from "commander";
import { notImplemented } from "../notyet.js";

export function register(program: Command): void {
  program
    .command("preflight")
    .description("preflight (not implemented yet)")
    .action(() => notImplemented("preflight"));
}
