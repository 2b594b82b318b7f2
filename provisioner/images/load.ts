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

export interface ImageArchive {
  /** The archive on this machine. */
  path: string;
  /** Config digest ("sha256:…"): the image id in Docker and in crictl. */
  id: string;
  /** Tags in the archive, as Docker wrote them ("kpt-echo:1"). */
  tags: string[];
  /** Remove the archive when done (it was made by docker save). */
  temporary: boolean;
}

/** The tags and config digest of a `docker save` archive (its manifest.json). Throws UsageError for anything else. */
export async function readArchive(path: string): Promise<Omit<ImageArchive, "temporary">> {
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
  return { path, id: `sha256:${hex}`, tags: manifest[0].RepoTags ?? [] };
}

/** IMAGE from the local Docker engine (saved to a temporary archive), or FILE.tar as it is. */
export async function imageArchive(source: string): Promise<ImageArchive> {
  if (source.endsWith(".tar") || existsSync(source)) {
    if (!existsSync(source)) throw new UsageError(`${source}: no such file`);
    return { ...(await readArchive(source)), temporary: false };
  }
  const inspect = await execa("docker", ["image", "inspect", "-f", "{{.Id}}", source], { reject: false });
  if (inspect.exitCode !== 0) throw new UsageError(`no image ${source} in the local Docker engine (docker image inspect: ${String(inspect.stderr).trim().split("\n").pop()})`);
  const dir = mkdtempSync(join(tmpdir(), "kubeprov-image-load-"));
  const path = join(dir, "image.tar");
  const save = await execa("docker", ["save", "-o", path, source], { reject: false });
  if (save.exitCode !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new UsageError(`docker save ${source} failed: ${String(save.stderr).trim()}`);
  }
  return { ...(await readArchive(path)), temporary: true };
}

/** containerd's name for a Docker tag: "kpt-echo:1" → "docker.io/library/kpt-echo:1". */
export function containerdRef(tag: string): string {
  const [first] = tag.split("/");
  const hasRegistry = tag.includes("/") && (first.includes(".") || first.includes(":") || first === "localhost");
  const full = hasRegistry ? tag : tag.includes("/") ? `docker.io/${tag}` : `docker.io/library/${tag}`;
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
  await host.transport.writeFile(remote, readFileSync(archive.path), { mode: 0o600 });
  const r = await host.transport.exec(`ctr -n k8s.io images import ${shq(remote)}; rc=$?; rm -f ${shq(remote)}; exit $rc`, { sudo: true, check: false, timeoutMs: 300_000 });
  if (r.code !== 0) throw new HostError(host.name, "image load", `ctr images import failed`, (r.stderr || r.stdout).trim());
  return "imported";
}
