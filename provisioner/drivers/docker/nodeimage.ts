// The node image (kubeprov/node:<tag>): built from templates/node-image/ with debootstrap and
// `docker import`, tagged with a hash of the recipe, so it is rebuilt only when the recipe changes.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, renameSync, chmodSync, copyFileSync } from "node:fs";
import { join, relative, dirname } from "node:path";
import { execa } from "execa";
import { cacheDir, templatesDir } from "../../paths.js";
import { RuntimeFailure, lastLines } from "../../errors.js";
import { debianMirror } from "../../images/debian-mirror.js";
import { docker, inspect } from "./cli.js";
import { withFileLock } from "../filelock.js";

export const NODE_IMAGE_REPO = "kubeprov/node";
export const NODE_IMAGE_SUITE = "bookworm";
/** Bump when the build steps in this file change in a way that changes the image. */
const BUILD_FORMAT = "1";
/** Label on the image: the full recipe hash. */
export const NODE_IMAGE_LABEL_RECIPE = "io.kubeprov.node-image.recipe";

export function recipeDir(): string {
  return join(templatesDir(), "node-image");
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(p);
    }
  };
  walk(dir);
  return out;
}

/** The packages of the image, from packages.txt (comments and blank lines dropped). */
export function parsePackages(text: string): string[] {
  return text
    .split("\n")
    .map((l) => l.replace(/#.*/, "").trim())
    .filter((l) => l.length > 0);
}

/** sha256 over every recipe file (path and content) and the build format. */
export function recipeHash(dir: string = recipeDir()): string {
  const h = createHash("sha256");
  h.update(`format ${BUILD_FORMAT}\nsuite ${NODE_IMAGE_SUITE}\n`);
  for (const f of listFiles(dir)) {
    const rel = relative(dir, f);
    if (rel === "README.md") continue; // prose does not change the image
    const st = statSync(f);
    h.update(`${rel}\0${st.mode & 0o111 ? "x" : "-"}\0`);
    h.update(readFileSync(f));
    h.update("\0");
  }
  return h.digest("hex");
}

/** The image tag for the current recipe: kubeprov/node:<first 12 hex of the recipe hash>. */
export function nodeImageRef(dir: string = recipeDir()): string {
  return `${NODE_IMAGE_REPO}:${recipeHash(dir).slice(0, 12)}`;
}

/** Key of the debootstrap cache: only what debootstrap sees (suite, packages, architecture). */
function debootstrapKey(packages: string[]): string {
  return createHash("sha256").update(`${NODE_IMAGE_SUITE}\n${process.arch}\n${packages.join("\n")}`).digest("hex").slice(0, 16);
}

export async function nodeImageExists(ref: string): Promise<boolean> {
  const r = await inspect("image", [ref]);
  return r.length > 0;
}

export interface EnsureNodeImageResult {
  image: string;
  built: boolean;
  durationMs: number;
}

export interface NodeImageOptions {
  /** Rebuild even when the image exists (the debootstrap cache is still used). */
  force?: boolean;
  /** Progress lines (never secrets). */
  log?: (message: string) => void;
}

/** Returns the node image for the current recipe, building it when missing. */
export async function ensureNodeImage(opts: NodeImageOptions = {}): Promise<EnsureNodeImageResult> {
  const started = Date.now();
  const image = nodeImageRef();
  if (!opts.force && (await nodeImageExists(image))) return { image, built: false, durationMs: Date.now() - started };
  return withFileLock(
    join(nodeImageCache(), "build.lock"),
    async () => {
      // Someone else may have built it while we waited for the lock.
      if (!opts.force && (await nodeImageExists(image))) return { image, built: false, durationMs: Date.now() - started };
      await buildNodeImage(image, opts.log ?? (() => {}));
      return { image, built: true, durationMs: Date.now() - started };
    },
    { onWait: (pid) => opts.log?.(`waiting for another node image build (pid ${pid})`) },
  );
}

function nodeImageCache(): string {
  return join(cacheDir(), "node-image");
}

async function run(cmd: string, args: string[], opts: { input?: string; cwd?: string; shell?: boolean } = {}): Promise<string> {
  const r = await execa(cmd, args, { reject: false, input: opts.input, cwd: opts.cwd, stripFinalNewline: true });
  if (r.exitCode !== 0) {
    throw new RuntimeFailure(`node image: ${cmd} ${args.join(" ")} failed (exit ${r.exitCode})`, lastLines(String(r.stderr || r.stdout), 25));
  }
  return String(r.stdout);
}

/** Builds `image` from the recipe: cached debootstrap tarball → files/ → customize.sh → docker import. */
export async function buildNodeImage(image: string, log: (m: string) => void): Promise<void> {
  const dir = recipeDir();
  const packages = parsePackages(readFileSync(join(dir, "packages.txt"), "utf8"));
  const cache = nodeImageCache();
  mkdirSync(cache, { recursive: true });
  const baseTar = join(cache, `debootstrap-${NODE_IMAGE_SUITE}-${debootstrapKey(packages)}.tar`);
  const work = join(cache, `work-${process.pid}`);
  rmSync(work, { recursive: true, force: true });
  const rootfs = join(work, "rootfs");
  mkdirSync(rootfs, { recursive: true });
  try {
    if (existsSync(baseTar)) {
      log(`node image: using cached debootstrap ${baseTar}`);
      await run("tar", ["-C", rootfs, "--numeric-owner", "-xpf", baseTar]);
    } else {
      const mirror = debianMirror(NODE_IMAGE_SUITE);
      log(`node image: debootstrap --variant=minbase ${NODE_IMAGE_SUITE} from ${mirror} (${packages.length} packages, about 2 minutes)`);
      await run("debootstrap", ["--variant=minbase", `--include=${packages.join(",")}`, NODE_IMAGE_SUITE, rootfs, mirror]);
      const tmp = `${baseTar}.tmp-${process.pid}`;
      await run("tar", ["-C", rootfs, "--numeric-owner", "-cpf", tmp, "."]);
      renameSync(tmp, baseTar);
    }
    copyOverlay(join(dir, "files"), rootfs);
    log("node image: customize.sh (chroot)");
    await run("chroot", [rootfs, "/bin/sh", "-s"], { input: readFileSync(join(dir, "customize.sh"), "utf8") });
    log(`node image: docker import → ${image}`);
    const hash = recipeHash(dir);
    // tar | docker import, through a shell pipe (no temporary copy of the tree).
    const changes = [
      `LABEL ${NODE_IMAGE_LABEL_RECIPE}=${hash}`,
      "ENV container=docker",
      'CMD ["/sbin/init"]',
    ];
    const tar = execa("tar", ["-C", rootfs, "--numeric-owner", "-cf", "-", "."], { buffer: false, stdout: "pipe", stderr: "pipe", reject: false });
    const imp = execa("docker", ["import", ...changes.flatMap((c) => ["--change", c]), "-", image], { stdin: "pipe", reject: false });
    tar.stdout!.pipe(imp.stdin!);
    const [t, i] = await Promise.all([tar, imp]);
    if (t.exitCode !== 0) throw new RuntimeFailure(`node image: tar of ${rootfs} failed`, lastLines(String(t.stderr ?? ""), 10));
    if (i.exitCode !== 0) throw new RuntimeFailure(`node image: docker import ${image} failed`, lastLines(String(i.stderr ?? ""), 10));
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** Copies files/ over the root filesystem: scripts under sbin/bin executable (0755), the rest 0644. */
function copyOverlay(from: string, to: string): void {
  if (!existsSync(from)) return;
  for (const f of listFiles(from)) {
    const rel = relative(from, f);
    const dest = join(to, rel);
    mkdirSync(dirname(dest), { recursive: true });
    rmSync(dest, { force: true });
    copyFileSync(f, dest);
    chmodSync(dest, /(^|\/)s?bin\//.test(rel) ? 0o755 : 0o644);
  }
}

/** The node images present locally (every tag of kubeprov/node). */
export async function listNodeImages(): Promise<Array<{ image: string; id: string; created: string; size: string; current: boolean }>> {
  const r = await docker(["image", "ls", NODE_IMAGE_REPO, "--format", "{{json .}}"]);
  const current = nodeImageRef();
  return r.stdout
    .split("\n")
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as { Repository: string; Tag: string; ID: string; CreatedSince: string; Size: string })
    .map((x) => ({ image: `${x.Repository}:${x.Tag}`, id: x.ID, created: x.CreatedSince, size: x.Size, current: `${x.Repository}:${x.Tag}` === current }));
}
