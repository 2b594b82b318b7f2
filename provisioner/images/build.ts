// Builds the cluster's images from the bundle's binaries with the local Docker engine and saves
// each as a tar next to the bundle (<bundle>/images/<name>.tar) with an index (images.json) that
// records the tar's sha256 and a digest of everything that went in. An image is rebuilt only when
// its tar is missing or an input changed (a binary's sha256, the recipe, the base image).
import { debianMirror } from "./debian-mirror.js";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, linkSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { RuntimeFailure } from "../errors.js";
import { loadTemplate, renderText } from "../render.js";
import { packageRoot } from "../paths.js";
import { imageCatalog, type BundleVersions, type ImageName, type ImageRecipe } from "./catalog.js";

export interface BundleManifest extends BundleVersions {
  sha256: Record<string, string>;
}

export interface ImageRecord {
  name: ImageName;
  ref: string;
  /** File name under <bundle>/images/. */
  file: string;
  /** sha256 of the tar. */
  sha256: string;
  /** sha256 over the recipe, the Dockerfile, the binaries' sha256 and the base image id. */
  inputDigest: string;
  builtAt: string;
}

export interface ImagesIndex {
  kubernetesVersion: string;
  images: ImageRecord[];
}

export const IMAGES_INDEX = "images.json";
/** Bump the suffix when the recipe in ensureDebianBase changes. */
export const DEBIAN_BASE_IMAGE = "kubeprov/debian-base:bookworm-2";

export function imagesDir(bundle: string): string {
  return join(bundle, "images");
}

/** The bundle's manifest.json (written last by scripts/build-bundle.sh: its presence means complete). */
export function readBundleManifest(bundle: string): BundleManifest {
  const file = join(bundle, "manifest.json");
  if (!existsSync(file)) {
    throw new RuntimeFailure(`the artifact bundle at ${bundle} is not complete (no manifest.json)`, "build it with `npm run artifacts` (scripts/build-bundle.sh)");
  }
  return JSON.parse(readFileSync(file, "utf8")) as BundleManifest;
}

export function readImagesIndex(bundle: string): ImagesIndex | undefined {
  const file = join(imagesDir(bundle), IMAGES_INDEX);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, "utf8")) as ImagesIndex;
}

function writeImagesIndex(bundle: string, index: ImagesIndex): void {
  const dir = imagesDir(bundle);
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.${IMAGES_INDEX}.${process.pid}.tmp`);
  writeFileSync(tmp, JSON.stringify(index, null, 2) + "\n", { mode: 0o644 });
  renameSync(tmp, join(dir, IMAGES_INDEX));
}

export function sha256File(path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash("sha256");
    createReadStream(path)
      .on("data", (d) => h.update(d))
      .on("end", () => resolve(h.digest("hex")))
      .on("error", reject);
  });
}

function dockerfileFor(recipe: ImageRecipe, baseImage: string | undefined): string {
  const entrypoint = recipe.entrypoint.map((e) => JSON.stringify(e)).join(", ");
  switch (recipe.base) {
    case "pause":
      return loadTemplate("images/Dockerfile.pause");
    case "scratch":
      return renderText(loadTemplate("images/Dockerfile.scratch"), { entrypoint }, "images/Dockerfile.scratch");
    case "debian":
      if (!baseImage) throw new RuntimeFailure(`no Debian base image for ${recipe.name}`);
      return renderText(loadTemplate("images/Dockerfile.based"), { entrypoint, base: baseImage }, "images/Dockerfile.based");
  }
}

async function dockerImageId(ref: string): Promise<string | undefined> {
  const r = await execa("docker", ["image", "inspect", "--format", "{{.Id}}", ref], { reject: false });
  return r.exitCode === 0 ? r.stdout.trim() : undefined;
}

/**
 * The Debian root that images needing userland tools (kube-proxy: iptables, conntrack) are built on:
 * a small debootstrap root (bookworm, like the node image, so iptables agree), built once and kept
 * as DEBIAN_BASE_IMAGE. Not the whole node image: every node imports this image, so small matters,
 * and it does not change each time the node image's recipe does. KUBEPROV_IMAGES_BASE names another.
 */
export async function ensureDebianBase(log: (m: string) => void): Promise<string> {
  if (process.env.KUBEPROV_IMAGES_BASE) return process.env.KUBEPROV_IMAGES_BASE;
  if (await dockerImageId(DEBIAN_BASE_IMAGE)) return DEBIAN_BASE_IMAGE;
  const mirror = debianMirror("bookworm");
  const root = mkdtempSync(join(tmpdir(), "kubeprov-debian-"));
  try {
    log(`debootstrap bookworm (minbase + iptables, conntrack) from ${mirror} for ${DEBIAN_BASE_IMAGE}`);
    await execa(
      "debootstrap",
      ["--variant=minbase", "--include=iptables,conntrack,ipset,ebtables,kmod,ca-certificates", "bookworm", root, mirror],
      { stdio: "pipe" },
    ).catch((e: { stderr?: string; stdout?: string; message: string }) => {
      throw new RuntimeFailure(`debootstrap failed: ${e.message.split("\n")[0]}`, (e.stderr || e.stdout || "").slice(-2000));
    });
    // Every node imports this image: drop what a program never reads (package caches, translations, documentation).
    for (const d of ["var/cache/apt/archives", "var/lib/apt/lists", "usr/share/locale", "usr/share/doc", "usr/share/man", "usr/share/info"]) {
      rmSync(join(root, d), { recursive: true, force: true });
      mkdirSync(join(root, d), { recursive: true });
    }
    const tar = execa("tar", ["-C", root, "-c", "."], { buffer: false });
    const imp = execa("docker", ["import", "-", DEBIAN_BASE_IMAGE]);
    tar.stdout!.pipe(imp.stdin!);
    await Promise.all([tar, imp]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  return DEBIAN_BASE_IMAGE;
}

export interface BuildImagesOptions {
  bundle: string;
  /** Only these images (default: all). */
  names?: ImageName[];
  log?: (message: string) => void;
  /** Rebuild even when inputs did not change. */
  force?: boolean;
}

export interface BuildImagesResult {
  index: ImagesIndex;
  built: ImageName[];
  unchanged: ImageName[];
}

/** Build (when needed) and save the images; returns the index written to <bundle>/images/images.json. */
export async function buildImages(opts: BuildImagesOptions): Promise<BuildImagesResult> {
  const log = opts.log ?? (() => {});
  const manifest = readBundleManifest(opts.bundle);
  const recipes = imageCatalog(manifest).filter((r) => !opts.names || opts.names.includes(r.name));
  const old = readImagesIndex(opts.bundle);
  const records = new Map<ImageName, ImageRecord>((old?.images ?? []).map((r) => [r.name, r]));
  const dir = imagesDir(opts.bundle);
  mkdirSync(dir, { recursive: true });
  const built: ImageName[] = [];
  const unchanged: ImageName[] = [];
  let debianBase: string | undefined;
  const pauseSource = readFileSync(join(packageRoot(), "templates", "images", "pause.c"), "utf8");

  for (const recipe of recipes) {
    let baseId = "";
    if (recipe.base === "debian") {
      debianBase ??= await ensureDebianBase(log);
      baseId = (await dockerImageId(debianBase)) ?? "";
    }
    const dockerfile = dockerfileFor(recipe, debianBase);
    const h = createHash("sha256");
    h.update(JSON.stringify(recipe));
    h.update(dockerfile);
    h.update(baseId);
    for (const b of recipe.binaries) {
      const sum = manifest.sha256[b];
      if (!sum || !existsSync(join(opts.bundle, "bin", b))) {
        throw new RuntimeFailure(`the bundle at ${opts.bundle} has no bin/${b} (needed by image ${recipe.ref})`);
      }
      h.update(`${b}=${sum}`);
    }
    if (recipe.base === "pause") h.update(pauseSource);
    const inputDigest = h.digest("hex");
    const file = `${recipe.name}.tar`;
    const prev = records.get(recipe.name);
    if (!opts.force && prev && prev.inputDigest === inputDigest && prev.ref === recipe.ref && existsSync(join(dir, file))) {
      unchanged.push(recipe.name);
      continue;
    }
    const started = Date.now();
    const ctxDir = mkdtempSync(join(tmpdir(), `kubeprov-image-${recipe.name}-`));
    try {
      mkdirSync(join(ctxDir, "bin"));
      if (recipe.base === "pause") {
        writeFileSync(join(ctxDir, "pause.c"), pauseSource);
        await execa("gcc", ["-static", "-Os", "-s", "-o", join(ctxDir, "bin", "pause"), join(ctxDir, "pause.c")]).catch((e: { stderr?: string }) => {
          throw new RuntimeFailure("building the pause program with `gcc -static` failed (is gcc with static libc installed?)", e.stderr);
        });
        rmSync(join(ctxDir, "pause.c"));
      }
      for (const b of recipe.binaries) {
        const src = join(opts.bundle, "bin", b);
        const dst = join(ctxDir, "bin", b);
        try {
          linkSync(src, dst);
        } catch {
          copyFileSync(src, dst);
        }
        chmodSync(dst, 0o755);
      }
      writeFileSync(join(ctxDir, "Dockerfile"), dockerfile);
      await execa("docker", ["build", "-q", "--label", "io.kubeprov.image=" + recipe.name, "-t", recipe.ref, ctxDir], {
        env: { DOCKER_BUILDKIT: "0" },
      }).catch((e: { stderr?: string }) => {
        throw new RuntimeFailure(`docker build of ${recipe.ref} failed`, e.stderr);
      });
      const tmpTar = join(dir, `.${file}.${process.pid}.tmp`);
      await execa("docker", ["save", "-o", tmpTar, recipe.ref]);
      const sha256 = await sha256File(tmpTar);
      renameSync(tmpTar, join(dir, file));
      records.set(recipe.name, { name: recipe.name, ref: recipe.ref, file, sha256, inputDigest, builtAt: new Date().toISOString() });
      writeImagesIndex(opts.bundle, { kubernetesVersion: manifest.kubernetesVersion, images: [...records.values()] });
      built.push(recipe.name);
      log(`built ${recipe.ref} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    } finally {
      rmSync(ctxDir, { recursive: true, force: true });
    }
  }
  const index = { kubernetesVersion: manifest.kubernetesVersion, images: [...records.values()] };
  writeImagesIndex(opts.bundle, index);
  return { index, built, unchanged };
}
