#!/usr/bin/env node
// Runs the compiled test files with node's test runner: `node test/run.js [unit|ssh|e2e ...]`.
// Layers: unit (no hosts), ssh (real OpenSSH servers on loopback), e2e (docker driver, real binaries).
// Layers run one after the other, their files one at a time (the unit layer alone: two at a time).
import { readdirSync, existsSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { spawnSync } from "node:child_process";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const all = ["unit", "ssh", "e2e"];
const layers = process.argv.slice(2).length ? process.argv.slice(2) : all;
const unknown = layers.filter((l) => !all.includes(l));
if (unknown.length) {
  console.error(`unknown test layer ${unknown.join(", ")}; one of ${all.join(", ")}`);
  process.exit(2);
}
const filter = process.env.KUBEPROV_TEST_FILTER;
// One `node --test` run per layer, one layer after the other; ssh and e2e files one at a time (they
// share this machine's sshd ports and the Docker engine). The exit code is the first failing layer's.
let ran = 0;
let status = 0;
for (const layer of layers) {
  const dir = join(root, "dist", "test", layer);
  if (!existsSync(dir)) continue;
  const files = readdirSync(dir)
    .sort()
    .filter((f) => f.endsWith(".test.js"))
    .map((f) => join(dir, f))
    .filter((f) => !filter || f.includes(filter));
  if (!files.length) continue;
  ran += files.length;
  // Unit files two at a time only when the unit layer runs alone: beside the other layers (CI) they
  // run one at a time, so the runner's timing tests never share the CPUs with key generation.
  const concurrency = layer === "unit" && layers.length === 1 ? "2" : "1";
  const r = spawnSync(process.execPath, ["--test", `--test-concurrency=${concurrency}`, "--test-reporter=spec", ...files], { stdio: "inherit", cwd: root });
  if (status === 0 && r.status !== 0) status = r.status ?? 1;
}
if (ran === 0) {
  console.error("no test files found (did `tsc -p .` run?)");
  process.exit(1);
}
process.exit(status);
