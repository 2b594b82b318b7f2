import type { Command } from "commander";
import { notImplemented } from "../notyet.js";

export function register(program: Command): void {
  program
    .command("status")
    .description("status (not implemented yet)")
    .action(() => notImplemented("status"));
}
