#!/usr/bin/env node
// Runs the compiled test files with node's test runner: `node test/run.js [unit|ssh|e2e ...]`.
// Layers: unit (no hosts), ssh (real OpenSSH servers on loopback), e2e (docker driver, real binaries).
// Files in one layer run one at a time in e2e (they share the Docker engine), in parallel elsewhere.
import { readdirSync, existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const all = ["unit", "ssh", "e2e"];
const layers = process.argv.slice(2).length ? process.argv.slice(2) : all;
const files = [];
for (const layer of layers) {
  if (!all.includes(layer)) {
    console.error(`unknown test layer ${layer}; one of ${all.join(", ")}`);
    process.exit(2);
  }
  const dir = join(root, "dist", "test", layer);
  if (!existsSync(dir)) continue;
  for (const f of readdirSync(dir).sort()) if (f.endsWith(".test.js")) files.push(join(dir, f));
}
const filter = process.env.KUBEPROV_TEST_FILTER;
const chosen = filter ? files.filter((f) => f.includes(filter)) : files;
if (chosen.length === 0) {
  console.error("no test files found (did `tsc -p .` run?)");
  process.exit(1);
}
const concurrency = layers.includes("e2e") || layers.includes("ssh") ? "1" : "2";
const r = spawnSync(process.execPath, ["--test", `--test-concurrency=${concurrency}`, "--test-reporter=spec", ...chosen], {
  stdio: "inherit",
  cwd: root,
});
process.exit(r.status ?? 1);
