// Bench of many SSH hosts: `kubeprov status` and `kubeprov preflight` (whole CLI processes) on 1,
// 20 and 100 hosts, each a real OpenSSH server on a loopback port of this machine (the ssh test
// layer's fleet). preflight only reads (no --fix); its checks fail here (this machine is not a
// prepared node), which does not change what it runs, so its exit code is not looked at. Every
// "host" shares this machine's CPUs: a pessimistic figure for separate machines.
// Library: `benchFleet()` (the lead's bench calls it). Script: `node dist/scripts/bench-fleet.js`.
import { execa } from "execa";
import { writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { startFleet } from "../test/helpers/sshd.js";

const BIN = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "bin", "kubeprov.js");

export interface FleetFigure {
  command: "status" | "preflight";
  hosts: number;
  /** Wall time of each run, ms. */
  runs: number[];
}

export async function benchFleet(opts: { sizes?: number[]; runs?: number; log?: (m: string) => void } = {}): Promise<FleetFigure[]> {
  const sizes = opts.sizes ?? [1, 20, 100];
  const runs = opts.runs ?? 3;
  const log = opts.log ?? (() => {});
  const fleet = await startFleet(Math.max(...sizes), { prefix: "fleet" });
  const out: FleetFigure[] = [];
  try {
    const all = (fleet.clusterInput().spec as { hosts: Array<Record<string, unknown>> }).hosts;
    for (const n of sizes) {
      const file = join(fleet.dir, `fleet-${n}.yaml`);
      writeFileSync(file, fleet.clusterYaml({ hosts: all.slice(0, n) }));
      for (const command of ["status", "preflight"] as const) {
        const fig: FleetFigure = { command, hosts: n, runs: [] };
        for (let i = 0; i < runs; i++) {
          const t0 = performance.now();
          const r = await execa(process.execPath, [BIN, command, "-f", file, "-o", "json"], { reject: false, env: { CI: "1" } });
          const ms = performance.now() - t0;
          // status exits 1 only for unreachable hosts here; preflight's failed checks are expected.
          if (command === "status" && r.exitCode !== 0) throw new Error(`status on ${n} hosts failed (exit ${r.exitCode}): ${r.stderr.slice(-2000)}`);
          if (command === "preflight" && (r.stdout.match(/"type":"check"/g) ?? []).length === 0) throw new Error(`preflight on ${n} hosts ran no check: ${r.stderr.slice(-2000)}`);
          fig.runs.push(ms);
          log(`${command} on ${n} host(s), run ${i}: ${(ms / 1000).toFixed(2)} s (load ${loadavg()[0]!.toFixed(1)})`);
        }
        out.push(fig);
      }
    }
  } finally {
    await fleet.stop();
  }
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  for (const f of await benchFleet({ log: (m) => process.stderr.write(`[bench-fleet] ${m}\n`) })) {
    process.stdout.write(`${f.command} ${f.hosts}: ${f.runs.map((ms) => (ms / 1000).toFixed(2)).join(" ")} s\n`);
  }
}
