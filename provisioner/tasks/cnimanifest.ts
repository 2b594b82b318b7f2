// networking.cni "manifest": the user's own network add-on (seed 004 applies weave's manifest after
// init). The images it needs are loaded into every node's containerd (skipped where present), then
// its objects are applied with server-side apply, as kubeprov's own add-ons are. kubeprov writes no
// CNI configuration then: the add-on does.
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { ConfigError, HostError } from "../errors.js";
import type { CheckResult, Host, RunContext, Task } from "../engine/task.js";
import { objectsFromYaml } from "../bootstrap/manifests.js";
import { imageArchive, loadInto, nodeHas, type ImageArchive } from "../images/load.js";
import { firstControlPlane } from "../plan/topology.js";
import { objectsTask } from "./bootstrap.js";

export const CNI_MANIFEST_TASK = "addons/cni-manifest";
export const CNI_IMAGES_TASK = "prepare/cni-images";

const usesManifest = (ctx: RunContext) => ctx.cluster.spec.networking.cni === "manifest" && !!ctx.cluster.spec.networking.cniManifest;

/** The manifest's path: as written when absolute, else next to the cluster file. */
export function manifestPath(ctx: RunContext): string {
  const file = ctx.cluster.spec.networking.cniManifest!.file;
  return isAbsolute(file) || ctx.source.startsWith("<") ? resolve(file) : resolve(dirname(ctx.source), file);
}

/** The images of cniManifest.images, each made into an archive once per run. */
function archives(ctx: RunContext): Promise<ImageArchive[]> {
  const key = "cni-manifest/archives";
  let p = ctx.shared.get(key) as Promise<ImageArchive[]> | undefined;
  if (!p) {
    p = Promise.all(ctx.cluster.spec.networking.cniManifest!.images.map((i) => imageArchive(i)));
    ctx.shared.set(key, p);
  }
  return p;
}

export function cniImagesTask(opts: { hosts: (ctx: RunContext) => Host[]; after: string[] }): Task {
  return {
    name: CNI_IMAGES_TASK,
    phase: "prepare",
    description: "the images the network add-on's manifest needs, loaded into containerd",
    hosts: (ctx) => (usesManifest(ctx) ? opts.hosts(ctx) : []),
    after: opts.after,
    async check(host, ctx): Promise<CheckResult> {
      const missing: string[] = [];
      for (const a of await archives(ctx)) if (!(await nodeHas(host, a))) missing.push(a.tags.join(",") || a.id);
      return missing.length ? { needed: true, reason: `load ${missing.join(", ")}` } : { needed: false, reason: "images present" };
    },
    async apply(host, ctx) {
      const loaded: string[] = [];
      for (const a of await archives(ctx)) if ((await loadInto(host, a)) === "imported") loaded.push(a.tags.join(",") || a.id);
      return { detail: `loaded ${loaded.join(", ") || "nothing"}` };
    },
  };
}

export function cniManifestTask(opts: { after: string[] }): Task {
  return objectsTask({
    name: CNI_MANIFEST_TASK,
    phase: "addons",
    description: "the objects of networking.cniManifest.file (the user's network add-on)",
    after: opts.after,
    hosts: (ctx) => (usesManifest(ctx) ? [firstControlPlane(ctx)] : []),
    objects: (ctx) => {
      const path = manifestPath(ctx);
      let text: string;
      try {
        text = readFileSync(path, "utf8");
      } catch (e) {
        throw new ConfigError(`${ctx.source}: networking.cniManifest.file: cannot read ${path} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
      }
      try {
        return objectsFromYaml(text, path);
      } catch (e) {
        throw new HostError(firstControlPlane(ctx).name, CNI_MANIFEST_TASK, (e as Error).message);
      }
    },
  });
}
