import type { Command } from "commander";
import { notImplemented } from "../notyet.js";

export function register(program: Command): void {
  program
    .command("join")
    .description("join (not implemented yet)")
    .action(() => notImplemented("join"));
}
