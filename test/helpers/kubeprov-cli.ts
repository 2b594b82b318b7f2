// Runs the built CLI (bin/kubeprov.js) as a user would, with its own state and kubeconfig
// directories, and cleans up everything a test cluster left in Docker (found by label).
import { execa } from "execa";
import { removeNodeCgroups } from "../../provisioner/drivers/docker/cgroups.js";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The compiled tree this helper belongs to (dist/, or another --outDir). */
export const DIST_ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The CLI entry of the same compiled tree (what bin/kubeprov.js runs for dist/). */
export const CLI_MAIN = join(DIST_ROOT, "provisioner", "cli", "main.js");
/** A tiny entry point equal to bin/kubeprov.js, bound to CLI_MAIN: `node CLI_ARGS... args`. */
export const CLI_ARGS = [
  "--input-type=module",
  "-e",
  "const { run } = await import(process.argv[1]); process.exitCode = await run(process.argv.slice(2));",
  CLI_MAIN,
];

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export interface CliEnv {
  /** KUBEPROV_HOME for this test (cluster directories live under it). */
  home: string;
  kubeconfig: string;
  cleanup(): void;
}

export function makeCliEnv(prefix = "kpt-cli-"): CliEnv {
  const home = mkdtempSync(join(tmpdir(), prefix));
  return { home, kubeconfig: join(home, "kubeconfig"), cleanup: () => rmSync(home, { recursive: true, force: true }) };
}

export async function kubeprov(env: CliEnv, args: string[], extraEnv: Record<string, string> = {}, timeoutMs = 15 * 60_000): Promise<CliResult> {
  const t0 = Date.now();
  const r = await execa(process.execPath, [...CLI_ARGS, ...args], {
    reject: false,
    timeout: timeoutMs,
    env: { KUBEPROV_HOME: env.home, KUBECONFIG: env.kubeconfig, CI: "1", ...extraEnv },
    stdin: "ignore",
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), ms: Date.now() - t0 };
}

/** Every container, volume and network labelled for `cluster`, removed (cleanup in after(), also on failure). */
export async function dockerCleanup(cluster: string): Promise<void> {
  const label = `label=io.kubeprov.cluster=${cluster}`;
  const q = async (args: string[]) => String((await execa("docker", args, { reject: false })).stdout).split("\n").filter(Boolean);
  const cs = await q(["ps", "-aq", "--filter", label]);
  if (cs.length) await execa("docker", ["rm", "-f", "-v", ...cs], { reject: false });
  // The kubelets' cgroups on this machine, as `kubeprov delete` removes them.
  removeNodeCgroups(cluster);
  const vs = await q(["volume", "ls", "-q", "--filter", label]);
  if (vs.length) await execa("docker", ["volume", "rm", "-f", ...vs], { reject: false });
  const ns = await q(["network", "ls", "-q", "--filter", label]);
  if (ns.length) await execa("docker", ["network", "rm", ...ns], { reject: false });
}

export async function dockerLines(args: string[]): Promise<string[]> {
  const r = await execa("docker", args, { reject: false });
  return String(r.stdout).split("\n").filter(Boolean);
}
