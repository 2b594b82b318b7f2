#!/usr/bin/env node
// Entry point: runs the compiled CLI (npm install / npm run build compile it into dist/).
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { dirname, join } from "node:path";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const main = join(root, "dist", "provisioner", "cli", "main.js");
if (!existsSync(main)) {
  process.stderr.write("kubeprov: not built yet; run `npm install` (or `npm run build`) in " + root + "\n");
  process.exit(2);
}
const { run } = await import(main);
process.exitCode = await run(process.argv.slice(2));
