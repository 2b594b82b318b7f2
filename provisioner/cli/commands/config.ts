import type { Command } from "commander";
import { notImplemented } from "../notyet.js";

export function register(program: Command): void {
  program
    .command("config")
    .description("config (not implemented yet)")
    .action(() => notImplemented("config"));
}
