import type { Command } from "commander";
import { notImplemented } from "../notyet.js";

export function register(program: Command): void {
  program
    .command("init")
    .description("init (not implemented yet)")
    .action(() => notImplemented("init"));
}
