import type { Command } from "commander";
import { notImplemented } from "../notyet.js";

export function register(program: Command): void {
  program
    .command("certs")
    .description("certs (not implemented yet)")
    .action(() => notImplemented("certs"));
}
