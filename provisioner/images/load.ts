// `kubeprov image load`: a local Docker image or a `docker save` archive into the containerd of
// every node (k8s.io namespace), like `minikube image load` and `kind load docker-image`. The
// archive travels over each node's SSH connection; a node whose containerd already has the same
// image (by its config digest, what `crictl images` calls the id) is skipped.
import { execa } from "execa";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HostError, UsageError } from "../errors.js";
import type { Host } from "../engine/task.js";
import { shq } from "../transport/transport.js";
import { imageSource } from "./registries.js";

export interface ImageArchive {
  /** Config digest ("sha256:…"): the image id in Docker and in crictl. */
  id: string;
  /** Tags in the archive, as Docker writes them ("kpt-echo:1"). */
  tags: string[];
  /** The archive on this machine: the user's file, or one `docker save` writes the first time it is asked for. */
  path(): Promise<string>;
}

/** The tags and config digest of a `docker save` archive (its manifest.json). Throws UsageError for anything else. */
export async function readArchive(path: string): Promise<Omit<ImageArchive, "path">> {
  const r = await execa("tar", ["-xOf", path, "manifest.json"], { reject: false });
  if (r.exitCode !== 0) throw new UsageError(`${path} is not an image archive (no manifest.json inside: ${String(r.stderr).trim().split("\n").pop()}); make one with \`docker save IMAGE -o FILE.tar\``);
  let manifest: Array<{ Config?: string; RepoTags?: string[] }>;
  try {
    manifest = JSON.parse(String(r.stdout));
  } catch {
    throw new UsageError(`${path}: its manifest.json is not JSON; make the archive with \`docker save IMAGE -o FILE.tar\``);
  }
  if (!Array.isArray(manifest) || manifest.length !== 1 || !manifest[0].Config) throw new UsageError(`${path}: expected one image in the archive, found ${Array.isArray(manifest) ? manifest.length : 0}`);
  const config = manifest[0].Config!;
  const hex = /([0-9a-f]{64})/.exec(config)?.[1];
  if (!hex) throw new UsageError(`${path}: cannot tell the image's config digest from ${config}`);
  return { id: `sha256:${hex}`, tags: manifest[0].RepoTags ?? [] };
}

// Archives `docker save` wrote for this process, removed when it exits (whatever the outcome).
const temporaryDirs = new Set<string>();
function removeTemporaryDirs(): void {
  for (const d of temporaryDirs) rmSync(d, { recursive: true, force: true });
  temporaryDirs.clear();
}

/** The tags `docker save NAME` writes into its archive: none for an image id, NAME with ":latest" when it has no tag. */
export function savedTags(source: string): string[] {
  if (/^(sha256:)?[0-9a-f]{12,64}$/.test(source)) return [];
  return source.lastIndexOf(":") > source.lastIndexOf("/") ? [source] : [`${source}:latest`];
}

/**
 * IMAGE from the local Docker engine, or FILE.tar as it is. A Docker image is only inspected here
 * (its id and tags are enough to tell whether a node has it); it is saved to a temporary archive
 * the first time a node needs it, and that archive is removed when the process exits.
 */
export async function imageArchive(source: string): Promise<ImageArchive> {
  if (source.endsWith(".tar") || existsSync(source)) {
    if (!existsSync(source)) throw new UsageError(`${source}: no such file`);
    return { ...(await readArchive(source)), path: async () => source };
  }
  const inspect = await execa("docker", ["image", "inspect", "-f", "{{.Id}}", source], { reject: false });
  if (inspect.exitCode !== 0) throw new UsageError(`no image ${source} in the local Docker engine (docker image inspect: ${String(inspect.stderr).trim().split("\n").pop()})`);
  let saved: Promise<string> | undefined;
  const save = async (): Promise<string> => {
    const dir = mkdtempSync(join(tmpdir(), "kubeprov-image-load-"));
    if (temporaryDirs.size === 0) process.once("exit", removeTemporaryDirs);
    temporaryDirs.add(dir);
    const path = join(dir, "image.tar");
    const r = await execa("docker", ["save", "-o", path, source], { reject: false });
    if (r.exitCode !== 0) throw new UsageError(`docker save ${source} failed: ${String(r.stderr).trim()}`);
    return path;
  };
  return { id: String(inspect.stdout).trim(), tags: savedTags(source), path: () => (saved ??= save()) };
}

/** containerd's name for a Docker tag: "kpt-echo:1" → "docker.io/library/kpt-echo:1". */
export function containerdRef(tag: string): string {
  const { registry, path } = imageSource(tag);
  const full = `${registry}/${path}`;
  return full.includes(":") && !full.endsWith(":") && full.lastIndexOf(":") > full.lastIndexOf("/") ? full : `${full}:latest`;
}

/** Whether the node's containerd has this image id under every one of these references. */
export async function nodeHas(host: Host, archive: ImageArchive): Promise<boolean> {
  const r = await host.transport.exec("crictl images -o json 2>/dev/null || true", { sudo: true, check: false });
  try {
    const doc = JSON.parse(r.stdout) as { images?: Array<{ id: string; repoTags?: string[] }> };
    const img = doc.images?.find((i) => i.id === archive.id);
    return !!img && archive.tags.map(containerdRef).every((t) => img.repoTags?.includes(t));
  } catch {
    return false;
  }
}

export const NODE_LOAD_DIR = "/var/lib/kubeprov/images";

/** Loads the archive into one node; returns "imported" or "present". */
export async function loadInto(host: Host, archive: ImageArchive): Promise<"imported" | "present"> {
  if (await nodeHas(host, archive)) return "present";
  const remote = `${NODE_LOAD_DIR}/load-${archive.id.slice(7, 19)}.tar`;
  await host.transport.writeFile(remote, readFileSync(await archive.path()), { mode: 0o600 });
  const r = await host.transport.exec(`ctr -n k8s.io images import ${shq(remote)}; rc=$?; rm -f ${shq(remote)}; exit $rc`, { sudo: true, check: false, timeoutMs: 300_000 });
  if (r.code !== 0) throw new HostError(host.name, "image load", `ctr images import failed`, (r.stderr || r.stdout).trim());
  return "imported";
}
