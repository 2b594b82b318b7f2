import type { Command } from "commander";
import { notImplemented } from "../notyet.js";

export function register(program: Command): void {
  program
    .command("delete")
    .description("delete (not implemented yet)")
    .action(() => notImplemented("delete"));
}
