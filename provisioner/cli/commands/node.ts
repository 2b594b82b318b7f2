import type { Command } from "commander";
import { notImplemented } from "../notyet.js";

export function register(program: Command): void {
  program
    .command("node")
    .description("node (not implemented yet)")
    .action(() => notImplemented("node"));
}
