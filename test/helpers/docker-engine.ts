// Restarting the Docker engine itself, as a host reboot or a package upgrade does, for the tests of
// clusters that must come back by themselves. Only a dockerd this project started is restarted:
// one managed by systemd (`systemctl restart docker`), or the one scripts/setup.sh started in the
// background (its stdout is /var/log/kubeprov-dockerd.log), which is stopped by its PID and started
// again the same way. Any other dockerd is left alone and the caller skips its test.
import { execa } from "execa";
import { existsSync, readFileSync, readlinkSync } from "node:fs";

export const SETUP_DOCKERD_LOG = "/var/log/kubeprov-dockerd.log";
const PIDFILE = "/var/run/docker.pid";

/** How this machine's dockerd can be restarted, or why it cannot be by a test. */
export async function dockerRestartMethod(): Promise<{ how: "systemd" } | { how: "setup-script"; pid: number } | { how: "none"; why: string }> {
  const sd = await execa("systemctl", ["is-active", "--quiet", "docker"], { reject: false });
  if (sd.exitCode === 0) return { how: "systemd" };
  if (!existsSync(PIDFILE)) return { how: "none", why: `no ${PIDFILE}` };
  const pid = Number(readFileSync(PIDFILE, "utf8").trim());
  try {
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
    const out = readlinkSync(`/proc/${pid}/fd/1`);
    if (argv.length === 1 && /(^|\/)dockerd$/.test(argv[0]) && out === SETUP_DOCKERD_LOG) return { how: "setup-script", pid };
    return { how: "none", why: `dockerd pid ${pid} (${argv.join(" ")}, output ${out}) was not started by scripts/setup.sh` };
  } catch (e) {
    return { how: "none", why: `dockerd pid ${pid}: ${(e as Error).message}` };
  }
}

async function waitUntil(fn: () => Promise<boolean>, limitMs: number, what: string): Promise<void> {
  const t0 = Date.now();
  while (!(await fn())) {
    if (Date.now() - t0 > limitMs) throw new Error(`${what} after ${limitMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Restarts the engine (see dockerRestartMethod); resolves once `docker info` answers again. */
export async function restartDockerEngine(method: Awaited<ReturnType<typeof dockerRestartMethod>>): Promise<void> {
  if (method.how === "none") throw new Error(`cannot restart dockerd: ${method.why}`);
  if (method.how === "systemd") await execa("systemctl", ["restart", "docker"]);
  else {
    process.kill(method.pid, "SIGTERM");
    // dockerd stops every container (each with its stop signal) before it exits.
    await waitUntil(async () => !existsSync(`/proc/${method.pid}`), 120_000, `dockerd pid ${method.pid} still running`);
    await execa("bash", ["-c", `nohup dockerd </dev/null >>${SETUP_DOCKERD_LOG} 2>&1 &`]);
  }
  await waitUntil(async () => (await execa("docker", ["info"], { reject: false, timeout: 10_000 })).exitCode === 0, 60_000, "docker info does not answer");
}

/** The rules of Docker's DOCKER-USER chain (`iptables -S`), to check the egress block survives a restart. */
export async function dockerUserRules(): Promise<string[]> {
  const r = await execa("iptables", ["-S", "DOCKER-USER"], { reject: false });
  return String(r.stdout).split("\n").filter((l) => l.startsWith("-A "));
}
