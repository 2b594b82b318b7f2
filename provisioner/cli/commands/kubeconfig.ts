import type { Command } from "commander";
import { notImplemented } from "../notyet.js";

export function register(program: Command): void {
  program
    .command("kubeconfig")
    .description("kubeconfig (not implemented yet)")
    .action(() => notImplemented("kubeconfig"));
}
