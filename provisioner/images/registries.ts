// Where images come from: spec.images.repository (kubeadm's imageRepository) and
// spec.registryMirrors, which land on each node as containerd's registry host files
// (/etc/containerd/certs.d/<registry>/hosts.toml, containerd's hosts.md format). Pure: names,
// checks and file contents; tasks/mirrors.ts writes the files.
import { CONTAINERD_CERTS_DIR, IMAGE_MIRROR_CN } from "../constants.js";
import { renderTemplate } from "../render.js";
import { isDNSName, parseIP } from "../spec/cidr.js";

/** The registry `--registry-mirror URL` (without REGISTRY=) mirrors, as docker's --registry-mirror. */
export const DEFAULT_MIRRORED_REGISTRY = "docker.io";

/**
 * Where an image name pulls from, by the reference rules Docker and containerd follow: the first
 * component is a registry when it has a dot or a port or is localhost; otherwise the image is
 * docker.io's, with library/ before one-component names. `path` is the repository (and tag) inside
 * that registry, the name a mirror serves it under. Pure.
 */
export function imageSource(image: string): { registry: string; path: string } {
  const slash = image.indexOf("/");
  const first = slash < 0 ? "" : image.slice(0, slash);
  if (first && (first.includes(".") || first.includes(":") || first === "localhost")) return { registry: first, path: image.slice(slash + 1) };
  return { registry: DEFAULT_MIRRORED_REGISTRY, path: slash < 0 ? `library/${image}` : image };
}
/** containerd's host namespace used when no other matches. */
export const DEFAULT_HOST_NAMESPACE = "_default";

/** Mirror sets by country code, as minikube's --image-mirror-country (cn: its only entry). */
export const IMAGE_MIRROR_COUNTRIES: Record<string, { repository: string }> = {
  cn: { repository: IMAGE_MIRROR_CN },
};

/** A registry host: a DNS name or an IP address, with an optional port (`[v6]:port` for IPv6). */
function registryHostProblem(host: string): string | undefined {
  const m = /^(\[[^\]]+\]|[^:/[\]]+)(?::(\d+))?$/.exec(host);
  if (!m) return "is not a registry host (name[:port], e.g. registry.example.com:5000)";
  const name = m[1]!.startsWith("[") ? m[1]!.slice(1, -1) : m[1]!;
  if (m[1]!.startsWith("[") ? parseIP(name)?.family !== 6 : !parseIP(name) && !isDNSName(name.toLowerCase()))
    return "is not a registry host (its name is neither a DNS name nor an IP address)";
  if (m[2] !== undefined && (Number(m[2]) < 1 || Number(m[2]) > 65535)) return `has port ${m[2]}, not from 1 to 65535`;
  return undefined;
}

/** One path component of an image name (the distribution spec's grammar). */
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;

/** spec.images.repository: `registry[:port][/path…]`, no scheme, no tag. */
export function repositoryProblem(repo: string): string | undefined {
  const shown = JSON.stringify(repo);
  if (/^[a-z]+:\/\//i.test(repo)) return `${shown} has a URL scheme; write the repository as an image name prefix (registry[:port]/path, e.g. ${repo.replace(/^[a-z]+:\/\//i, "")})`;
  const [host, ...path] = repo.split("/");
  const why = registryHostProblem(host!);
  if (why) return `${shown}: ${JSON.stringify(host)} ${why}`;
  for (const c of path) {
    if (!PATH_COMPONENT.test(c)) return `${shown}: path part ${JSON.stringify(c)} is not valid in an image name (lowercase letters and digits, separated by '.', '_', '__' or '-'; no tag)`;
  }
  return undefined;
}

/** A key of spec.registryMirrors: the registry host as it appears in image names, or _default. */
export function mirroredRegistryProblem(registry: string): string | undefined {
  if (registry === DEFAULT_HOST_NAMESPACE) return undefined;
  const why = registryHostProblem(registry);
  return why ? `${JSON.stringify(registry)} ${why}, or ${DEFAULT_HOST_NAMESPACE}` : undefined;
}

/** A mirror endpoint: an http or https URL, without credentials, query or fragment. */
export function mirrorURLProblem(url: string): string | undefined {
  const shown = JSON.stringify(url);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return `${shown} is not a URL (like https://mirror.example.com or http://10.0.0.5:5000)`;
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") return `${shown}: the scheme must be http or https`;
  // The URL is not repeated: its user and password may be a secret.
  if (u.username || u.password) return `a mirror URL with credentials (${u.protocol}//…@${u.host}): credentials do not belong in it (containerd takes them from elsewhere); the URL is not shown`;
  if (u.search || u.hash) return `${shown}: a mirror URL has no query or fragment`;
  const why = registryHostProblem(u.host);
  if (why) return `${shown}: ${JSON.stringify(u.host)} ${why}`;
  return undefined;
}

/** The address containerd pulls a registry's images from when no mirror serves them. */
export function upstreamServer(registry: string): string | undefined {
  if (registry === DEFAULT_HOST_NAMESPACE) return undefined;
  if (registry === DEFAULT_MIRRORED_REGISTRY) return "https://registry-1.docker.io";
  return `https://${registry}`;
}

/** A URL as containerd's host key: no trailing slash. */
function hostKey(url: string): string {
  return url.replace(/\/+$/, "");
}

/** The hosts.toml of one registry: its upstream server, then each mirror for pull and resolve. */
export function renderHostsToml(registry: string, mirrors: readonly string[]): string {
  const server = upstreamServer(registry);
  const hosts = mirrors.map((m) => `[host.${JSON.stringify(hostKey(m))}]\n  capabilities = ["pull", "resolve"]\n`).join("\n");
  const text = renderTemplate("containerd/hosts.toml", { registry, server: server ? `server = ${JSON.stringify(server)}\n` : "", hosts });
  return text.replace(/\n{3,}/g, "\n\n").trimEnd() + "\n";
}

/** Where a registry's hosts.toml lives on a node. */
export function hostsTomlPath(registry: string): string {
  return `${CONTAINERD_CERTS_DIR}/${registry}/hosts.toml`;
}

/** Every hosts.toml a node gets: path and content. */
export function hostsTomlFiles(mirrors: Record<string, readonly string[]>): Array<{ registry: string; path: string; content: string }> {
  return Object.entries(mirrors)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([registry, urls]) => ({ registry, path: hostsTomlPath(registry), content: renderHostsToml(registry, urls) }));
}

/**
 * `--registry-mirror` values into spec.registryMirrors: `URL` mirrors docker.io, `REGISTRY=URL`
 * another registry; repeated flags add mirrors in order. Returns the problems, flag by flag.
 */
export function parseMirrorFlags(values: readonly string[]): { mirrors: Record<string, string[]>; problems: string[] } {
  const mirrors: Record<string, string[]> = {};
  const problems: string[] = [];
  for (const v of values) {
    const eq = v.indexOf("=");
    const registry = eq > 0 && !v.slice(0, eq).includes("/") ? v.slice(0, eq) : DEFAULT_MIRRORED_REGISTRY;
    const url = eq > 0 && !v.slice(0, eq).includes("/") ? v.slice(eq + 1) : v;
    const why = mirroredRegistryProblem(registry) ?? mirrorURLProblem(url);
    if (why) {
      const shown = /\/\/[^/@]*@/.test(v) ? "(value not shown: it holds credentials)" : JSON.stringify(v);
      problems.push(`--registry-mirror ${shown}: ${why}`);
      continue;
    }
    (mirrors[registry] ??= []).includes(url) || mirrors[registry]!.push(url);
  }
  return { mirrors, problems };
}
