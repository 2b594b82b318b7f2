// Bench of the docker driver: wall time of `kubeprov up --no-kubernetes` for N nodes (fresh),
// of a converged re-run, and of `delete`. The node image is made first and not counted.
// Library: `benchUp({ nodes: [1, 10] })` (the lead's bench calls it). Script: `node dist/scripts/bench-up.js [N...]`.
import { execa } from "execa";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { ensureNodeImage } from "../provisioner/drivers/docker/nodeimage.js";

const MAIN = join(dirname(fileURLToPath(import.meta.url)), "..", "provisioner", "cli", "main.js");

export interface UpBenchResult {
  nodes: number;
  /** `up --no-kubernetes` from nothing to every node running with SSH answering. */
  upMs: number;
  /** The same `up` again on the converged cluster (0 changes). */
  reupMs: number;
  deleteMs: number;
}

async function cli(home: string, args: string[]): Promise<number> {
  const t0 = Date.now();
  const r = await execa(
    process.execPath,
    ["--input-type=module", "-e", "const { run } = await import(process.argv[1]); process.exitCode = await run(process.argv.slice(2));", MAIN, ...args],
    { reject: false, env: { KUBEPROV_HOME: home, KUBECONFIG: join(home, "kubeconfig"), CI: "1" } },
  );
  if (r.exitCode !== 0) throw new Error(`kubeprov ${args.join(" ")} failed (exit ${r.exitCode}):\n${r.stderr}\n${r.stdout}`);
  return Date.now() - t0;
}

export async function benchUp(opts: { nodes?: number[]; log?: (m: string) => void } = {}): Promise<UpBenchResult[]> {
  const log = opts.log ?? (() => {});
  const img = await ensureNodeImage({ log });
  log(`node image ${img.image} (${img.built ? "built" : "reused"})`);
  const home = mkdtempSync(join(tmpdir(), "kpt-bench-up-"));
  const results: UpBenchResult[] = [];
  try {
    for (const n of opts.nodes ?? [1, 10]) {
      const name = `kpt-bench-up${n}-${process.pid % 10000}`;
      try {
        const upMs = await cli(home, ["up", "--name", name, "--nodes", String(n), "--no-kubernetes"]);
        const reupMs = await cli(home, ["up", "--name", name, "--nodes", String(n), "--no-kubernetes"]);
        const deleteMs = await cli(home, ["delete", "--name", name]);
        results.push({ nodes: n, upMs, reupMs, deleteMs });
        log(`up --no-kubernetes, ${n} node(s): ${upMs} ms; re-up ${reupMs} ms; delete ${deleteMs} ms`);
      } finally {
        await cli(home, ["delete", "--name", name]).catch(() => 0);
      }
    }
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
  return results;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const nodes = process.argv.slice(2).map(Number).filter((n) => n > 0);
  const r = await benchUp({ nodes: nodes.length ? nodes : undefined, log: (m) => process.stderr.write(`[bench-up] ${m}\n`) });
  process.stdout.write(JSON.stringify(r, null, 2) + "\n");
}
