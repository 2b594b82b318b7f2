// Local paths on the machine kubeprov runs on. Hosts' paths are in constants.ts.
import { homedir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";

/** ~ expansion for paths from the cluster file or flags. */
export function expandHome(p: string): string {
  if (p === "~") return homedir();
  if (p.startsWith("~/")) return join(homedir(), p.slice(2));
  return p;
}

/** Caches (downloads, the built bundle, node images' recipes): $KUBEPROV_CACHE or ~/.cache/kubeprov. */
export function cacheDir(): string {
  return process.env.KUBEPROV_CACHE ? resolve(process.env.KUBEPROV_CACHE) : join(homedir(), ".cache", "kubeprov");
}

/** The default artifact bundle directory for a Kubernetes version. */
export function bundleDir(version: string): string {
  return join(cacheDir(), "bundle", version);
}

/**
 * Local files of a driver-made cluster (SSH key pair, known_hosts, cluster.yaml, admin kubeconfig):
 * $KUBEPROV_HOME/clusters/NAME or ~/.local/share/kubeprov/clusters/NAME. `delete` removes it.
 */
export function stateHome(): string {
  return process.env.KUBEPROV_HOME ? resolve(process.env.KUBEPROV_HOME) : join(homedir(), ".local", "share", "kubeprov");
}

export function clusterDir(name: string): string {
  return join(stateHome(), "clusters", name);
}

/** The repository root (where package.json and templates/ are), from dist/ or from sources. */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json")) && existsSync(join(dir, "templates"))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error("cannot find the kubeprov package root (package.json + templates/)");
    dir = up;
  }
}

export function templatesDir(): string {
  return join(packageRoot(), "templates");
}
