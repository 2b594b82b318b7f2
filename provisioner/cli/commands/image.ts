import type { Command } from "commander";
import { notImplemented } from "../notyet.js";

export function register(program: Command): void {
  program
    .command("image")
    .description("image (not implemented yet)")
    .action(() => notImplemented("image"));
}
