// Read-only questions to the Docker daemon over its Engine API, on the local unix socket: what
// `docker version`, `docker ps` and `docker inspect` answer, without starting a docker CLI process
// for each (about 0.1-0.3 s apiece, most of a no-op `up`'s driver time). The answers are the
// same JSON objects the CLI prints (the CLI is a client of this API). Where the daemon is reached
// some other way (DOCKER_HOST over TCP or SSH, a docker context), `engineSocket()` is undefined and
// the callers use the CLI.
import { existsSync } from "node:fs";
import { request } from "node:http";

/** The unix socket of the daemon the docker CLI would talk to, when kubeprov can tell it for sure. */
export function engineSocket(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.DOCKER_CONTEXT) return undefined;
  const host = env.DOCKER_HOST;
  const path = !host ? "/var/run/docker.sock" : host.startsWith("unix://") ? host.slice("unix://".length) : undefined;
  return path && existsSync(path) ? path : undefined;
}

export type EngineAnswer = { status: number; body: unknown } | { unreachable: string };

/** GET path on the daemon's socket; `unreachable` when the socket refuses (daemon down, no permission). */
export function engineGet(socketPath: string, path: string, timeoutMs = 20_000): Promise<EngineAnswer> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path, method: "GET", headers: { host: "docker" }, timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let body: unknown = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* a plain-text answer stays text */
        }
        resolve({ status: res.statusCode ?? 0, body });
      });
      res.on("error", (e) => resolve({ unreachable: e.message }));
    });
    req.on("timeout", () => req.destroy(new Error(`no answer from ${socketPath} within ${timeoutMs / 1000} s`)));
    req.on("error", (e) => resolve({ unreachable: `${socketPath}: ${e.message}` }));
    req.end();
  });
}

/** The API path that inspects one object of a kind, as `docker <kind> inspect` does. */
export function inspectPath(kind: "container" | "network" | "volume" | "image", id: string): string {
  const e = encodeURIComponent(id);
  return kind === "container" ? `/containers/${e}/json` : kind === "network" ? `/networks/${e}` : kind === "volume" ? `/volumes/${e}` : `/images/${e}/json`;
}

/** The list path of a kind with label filters (`key=value` or `key`), as `docker <kind> ls --filter label=…`. */
export function listPath(kind: "containers" | "networks" | "volumes", labels: string[] = []): string {
  const filters = labels.length ? `filters=${encodeURIComponent(JSON.stringify({ label: labels }))}` : "";
  const query = [kind === "containers" ? "all=1" : "", filters].filter(Boolean).join("&");
  return `/${kind === "containers" ? "containers/json" : kind}${query ? `?${query}` : ""}`;
}
