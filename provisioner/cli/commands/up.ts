import type { Command } from "commander";
import { notImplemented } from "../notyet.js";

export function register(program: Command): void {
  program
    .command("up")
    .description("up (not implemented yet)")
    .action(() => notImplemented("up"));
}
