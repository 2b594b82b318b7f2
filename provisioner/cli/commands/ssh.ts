import type { Command } from "commander";
import { notImplemented } from "../notyet.js";

export function register(program: Command): void {
  program
    .command("ssh")
    .description("ssh (not implemented yet)")
    .action(() => notImplemented("ssh"));
}
