// Where the Kubernetes binaries come from: a local directory (the air-gapped bundle that
// `npm run artifacts` builds, checked against its manifest.json) or the official release
// downloads (mirror/release/<version>/bin/linux/<arch>/<name>, checked against <name>.sha256),
// cached under cacheDir()/downloads. Runs on the machine kubeprov runs on; hosts never fetch.
import { createHash } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, readFile, rename, rm, stat } from "node:fs/promises";
import { dirname, join } from "node:path";
import { Readable, Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import type { Cluster } from "./spec/schema.js";
import { RuntimeFailure } from "./errors.js";
import { bundleDir, cacheDir, expandHome } from "./paths.js";

export interface Artifact {
  name: string;
  /** Local file, ready to upload. */
  path: string;
  sha256: string;
}

export interface ResolvedArtifacts {
  source: "dir" | "download";
  version: string;
  arch: string;
  /** The bundle directory, or the download cache directory for this version and arch. */
  dir: string;
  binaries: Record<string, Artifact>;
}

export interface ResolveOptions {
  /** Binaries wanted. dir: default every binary in the manifest; download: default kubelet and kubectl. */
  names?: string[];
  /** Kubernetes/Go architecture of the hosts (default amd64). */
  arch?: string;
  /**
   * dir: hash each local file against manifest.json (default true). false takes the manifest's
   * digests as they are and only checks the files exist: for comparing with what hosts have,
   * before anything is copied from the files.
   */
  verify?: boolean;
}

/** What the air-gapped bundle's manifest.json holds (scripts/build-bundle.sh writes it last). */
export interface BundleManifest {
  kubernetesVersion: string;
  etcdVersion?: string;
  corednsVersion?: string;
  sha256: Record<string, string>;
}

/** Binaries the official Kubernetes release publishes (etcd, coredns, crictl come from elsewhere). */
export const RELEASE_BINARIES = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl", "kubeadm"] as const;

const hashCache = new Map<string, string>();

/** sha256 of a local file (memoised by path, size and mtime: a bundle is hashed once per process). */
export async function sha256File(path: string): Promise<string> {
  const st = await stat(path);
  const key = `${path}\0${st.size}\0${st.mtimeMs}`;
  const known = hashCache.get(key);
  if (known) return known;
  const h = createHash("sha256");
  await pipeline(createReadStream(path), h);
  const hex = h.digest("hex");
  hashCache.set(key, hex);
  return hex;
}

export async function resolveArtifacts(cluster: Cluster, opts: ResolveOptions = {}): Promise<ResolvedArtifacts> {
  const spec = cluster.spec;
  const arch = opts.arch ?? "amd64";
  if (spec.artifacts.source === "download") return resolveDownload(spec.artifacts.mirror, spec.kubernetesVersion, arch, opts.names ?? ["kubelet", "kubectl"]);
  const dir = spec.artifacts.path ? expandHome(spec.artifacts.path) : bundleDir(spec.kubernetesVersion);
  return resolveDir(dir, spec.kubernetesVersion, arch, opts.names, !spec.artifacts.path, opts.verify ?? true);
}

async function resolveDir(dir: string, version: string, arch: string, names: string[] | undefined, isDefault: boolean, verify: boolean): Promise<ResolvedArtifacts> {
  const manifestPath = join(dir, "manifest.json");
  const text = await readFile(manifestPath, "utf8").catch(() => undefined);
  if (text === undefined) {
    throw new RuntimeFailure(
      isDefault
        ? `no artifact bundle for Kubernetes ${version}: ${manifestPath} is missing; build it with \`npm run artifacts\` (or scripts/build-bundle.sh ${version}), or set spec.artifacts.source: download`
        : `spec.artifacts.path ${dir} holds no bundle (${manifestPath} is missing): point it at a directory made by \`npm run artifacts\``,
    );
  }
  let manifest: BundleManifest;
  try {
    manifest = JSON.parse(text) as BundleManifest;
  } catch (e) {
    throw new RuntimeFailure(`${manifestPath} is not valid JSON (${(e as Error).message}): rebuild the bundle with \`npm run artifacts\``);
  }
  if (manifest.kubernetesVersion && manifest.kubernetesVersion !== version) {
    throw new RuntimeFailure(`the bundle in ${dir} is for Kubernetes ${manifest.kubernetesVersion}, the cluster wants ${version}: build ${version} with \`npm run artifacts\``);
  }
  const wanted = names ?? Object.keys(manifest.sha256 ?? {}).sort();
  const binaries: Record<string, Artifact> = {};
  for (const name of wanted) {
    const expected = manifest.sha256?.[name];
    const path = join(dir, "bin", name);
    if (!expected) throw new RuntimeFailure(`the bundle in ${dir} has no ${name} (not in manifest.json): rebuild it with \`npm run artifacts\``);
    const got = verify ? await sha256File(path).catch(() => undefined) : await stat(path).then(() => expected, () => undefined);
    if (got === undefined) throw new RuntimeFailure(`${path} is missing from the bundle: rebuild it with \`npm run artifacts\``);
    if (got !== expected) throw new RuntimeFailure(`${path} does not match manifest.json (sha256 ${got}, expected ${expected}): the bundle is damaged; rebuild it with \`npm run artifacts\``);
    binaries[name] = { name, path, sha256: got };
  }
  return { source: "dir", version, arch, dir, binaries };
}

export function releaseUrl(mirror: string, version: string, arch: string, name: string): string {
  return `${mirror.replace(/\/+$/, "")}/release/${version}/bin/linux/${arch}/${name}`;
}

/** A .sha256 file holds the hex digest, alone or followed by the file name. */
export function parseSha256File(text: string): string | undefined {
  const tok = text.trim().split(/\s+/)[0]?.toLowerCase();
  return tok && /^[0-9a-f]{64}$/.test(tok) ? tok : undefined;
}

async function fetchText(url: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new RuntimeFailure(`cannot download ${url}: ${(e as Error).message}`);
  }
  if (!res.ok) throw new RuntimeFailure(`cannot download ${url}: HTTP ${res.status}`);
  return res.text();
}

async function resolveDownload(mirror: string, version: string, arch: string, names: string[]): Promise<ResolvedArtifacts> {
  const dir = join(cacheDir(), "downloads", version, "linux", arch);
  await mkdir(dir, { recursive: true });
  const binaries: Record<string, Artifact> = {};
  for (const name of names) {
    if (!(RELEASE_BINARIES as readonly string[]).includes(name)) {
      throw new RuntimeFailure(`${name} is not published with the Kubernetes release under ${mirror}: use spec.artifacts.source: dir (the bundle from \`npm run artifacts\`) for it`);
    }
    const url = releaseUrl(mirror, version, arch, name);
    const expected = parseSha256File(await fetchText(`${url}.sha256`));
    if (!expected) throw new RuntimeFailure(`${url}.sha256 does not hold a sha256 digest`);
    const path = join(dir, name);
    const cached = await sha256File(path).catch(() => undefined);
    if (cached === expected) {
      binaries[name] = { name, path, sha256: expected };
      continue;
    }
    const got = await downloadTo(url, path, expected);
    if (got !== expected) throw new RuntimeFailure(`refused ${url}: its sha256 is ${got}, but ${url}.sha256 says ${expected} (corrupted or tampered download; nothing was kept)`);
    binaries[name] = { name, path, sha256: got };
  }
  return { source: "download", version, arch, dir, binaries };
}

/** Download to a temp file next to `path`, hashing on the way; renamed into place only when the digest matches. */
async function downloadTo(url: string, path: string, expected: string): Promise<string> {
  let res: Response;
  try {
    res = await fetch(url);
  } catch (e) {
    throw new RuntimeFailure(`cannot download ${url}: ${(e as Error).message}`);
  }
  if (!res.ok || !res.body) throw new RuntimeFailure(`cannot download ${url}: HTTP ${res.status}`);
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.part`;
  const h = createHash("sha256");
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      h.update(chunk);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(Readable.fromWeb(res.body as import("node:stream/web").ReadableStream), tap, createWriteStream(tmp, { mode: 0o755 }));
  } catch (e) {
    await rm(tmp, { force: true });
    throw new RuntimeFailure(`cannot download ${url}: ${(e as Error).message}`);
  }
  const got = h.digest("hex");
  // Kept only when it matches the published digest: a corrupted download never lands in the cache.
  if (got === expected) await rename(tmp, path);
  else await rm(tmp, { force: true });
  return got;
}
