// The one place that runs the `docker` CLI. Everything else in the docker driver calls docker()
// and gets stdout back, or a RuntimeFailure that carries the command and docker's own message.
import { execa } from "execa";
import { RuntimeFailure, lastLines, truncate } from "../../errors.js";
import { engineGet, engineSocket, inspectPath, listPath } from "./api.js";

export interface DockerRunOptions {
  /** Data for docker's standard input (e.g. a public key piped into `docker exec -i`). */
  input?: string | Buffer;
  /** Return the result instead of throwing when docker exits non-zero. */
  reject?: boolean;
  timeoutMs?: number;
}

export interface DockerResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

/** The daemon here is Docker 20.10 (API 1.41); newer clients negotiate down by themselves. */
function dockerEnv(): NodeJS.ProcessEnv {
  return { ...process.env };
}

const DAEMON_DOWN = /Cannot connect to the Docker daemon|Is the docker daemon running|error during connect|connect: no such file or directory|connection refused/i;

/** A clear error for "dockerd is not running / not reachable". */
export function daemonDownError(detail: string): RuntimeFailure {
  const where = process.env.DOCKER_HOST ? `DOCKER_HOST=${process.env.DOCKER_HOST}` : "unix:///var/run/docker.sock";
  return new RuntimeFailure(
    `Docker is not running: cannot reach the Docker daemon (dockerd) at ${where}; start dockerd (e.g. \`dockerd &\` or \`systemctl start docker\`) and retry`,
    lastLines(detail.trim(), 5) || undefined,
  );
}

export async function docker(args: string[], opts: DockerRunOptions = {}): Promise<DockerResult> {
  let r;
  try {
    r = await execa("docker", args, {
      input: opts.input,
      reject: false,
      env: dockerEnv(),
      timeout: opts.timeoutMs ?? 10 * 60_000,
      stripFinalNewline: true,
    });
  } catch (e) {
    throw new RuntimeFailure(`cannot run the docker CLI: ${(e as Error).message}`);
  }
  if ((r as { code?: string }).code === "ENOENT") throw new RuntimeFailure("the `docker` CLI is not installed (apt-get install docker.io)");
  const res: DockerResult = { stdout: String(r.stdout ?? ""), stderr: String(r.stderr ?? ""), exitCode: r.exitCode ?? -1 };
  if (res.exitCode !== 0 && opts.reject !== false) {
    if (DAEMON_DOWN.test(res.stderr)) throw daemonDownError(res.stderr);
    if (r.timedOut) throw new RuntimeFailure(`docker ${truncate(args.join(" "), 200)}: timed out`);
    throw new RuntimeFailure(
      `docker ${truncate(args.join(" "), 300)} failed (exit ${res.exitCode})`,
      lastLines((res.stderr.trim() || res.stdout.trim()), 20) || undefined,
    );
  }
  return res;
}

/** Throws the clear "Docker is not running" error when the daemon cannot be reached. */
export async function checkDaemon(): Promise<{ serverVersion: string }> {
  const socket = engineSocket();
  if (socket) {
    const a = await engineGet(socket, "/version");
    if ("status" in a && a.status === 200) return { serverVersion: String((a.body as { Version?: string }).Version ?? "") };
    if ("unreachable" in a && !/EACCES/.test(a.unreachable)) throw daemonDownError(a.unreachable);
    // Not ours to read (permissions) or an odd answer: the CLI says what is wrong in its own words.
  }
  const r = await docker(["version", "--format", "{{.Server.Version}}"], { reject: false, timeoutMs: 20_000 });
  if (r.exitCode !== 0) {
    if (DAEMON_DOWN.test(r.stderr) || /daemon/i.test(r.stderr)) throw daemonDownError(r.stderr);
    throw new RuntimeFailure("docker version failed", lastLines(r.stderr, 10));
  }
  return { serverVersion: r.stdout.trim() };
}

/** `docker inspect` of objects that may not exist: returns the parsed array (missing ones left out). */
export async function inspect<T = any>(kind: "container" | "network" | "volume" | "image", ids: string[]): Promise<T[]> {
  if (ids.length === 0) return [];
  const socket = engineSocket();
  if (socket) {
    const answers = await Promise.all(ids.map((id) => engineGet(socket, inspectPath(kind, id))));
    if (answers.every((a) => "status" in a && (a.status === 200 || a.status === 404))) {
      return answers.flatMap((a) => ("status" in a && a.status === 200 ? [a.body as T] : []));
    }
  }
  const sub = kind === "container" ? ["container", "inspect"] : kind === "network" ? ["network", "inspect"] : kind === "volume" ? ["volume", "inspect"] : ["image", "inspect"];
  const r = await docker([...sub, ...ids], { reject: false });
  if (r.exitCode !== 0 && DAEMON_DOWN.test(r.stderr)) throw daemonDownError(r.stderr);
  const text = r.stdout.trim();
  if (!text) return [];
  try {
    return JSON.parse(text) as T[];
  } catch {
    return [];
  }
}

/**
 * The ids of the containers (all, running or not), networks or volumes (their names) that carry
 * these labels (`key=value` or `key`), as `docker <kind> ls --quiet --no-trunc --filter label=…`.
 */
export async function listIds(kind: "containers" | "networks" | "volumes", labels: string[] = []): Promise<string[]> {
  const socket = engineSocket();
  if (socket) {
    const a = await engineGet(socket, listPath(kind, labels));
    if ("status" in a && a.status === 200) {
      const items = (kind === "volumes" ? (a.body as { Volumes?: unknown[] }).Volumes ?? [] : a.body) as Array<{ Id?: string; Name?: string }>;
      if (Array.isArray(items)) return items.map((i) => String(kind === "volumes" ? i.Name : i.Id));
    }
    if ("unreachable" in a && !/EACCES/.test(a.unreachable)) throw daemonDownError(a.unreachable);
  }
  const filters = labels.flatMap((l) => ["--filter", `label=${l}`]);
  const args = kind === "containers" ? ["ps", "--all", "--quiet", "--no-trunc", ...filters] : kind === "networks" ? ["network", "ls", "--quiet", "--no-trunc", ...filters] : ["volume", "ls", "--quiet", ...filters];
  return (await docker(args)).stdout.split("\n").filter(Boolean);
}
