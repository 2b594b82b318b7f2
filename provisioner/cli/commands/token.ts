import type { Command } from "commander";
import { notImplemented } from "../notyet.js";

export function register(program: Command): void {
  program
    .command("token")
    .description("token (not implemented yet)")
    .action(() => notImplemented("token"));
}
