// Phase "prepare", task "prepare/images": the images this node's pods need (pause, kube-proxy,
// CoreDNS; etcd and the control plane too for static pods) imported into containerd's k8s.io
// namespace. The tars come from the bundle (<bundle>/images/, built by provisioner/images/build.ts,
// built here on the fly when missing); a tar the node can already see at NODE_BUNDLE_DIR (the docker
// driver mounts the bundle read-only) is imported in place, anything else is uploaded first.
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { expandHome, bundleDir } from "../paths.js";
import { shq } from "../transport/transport.js";
import { HostError } from "../errors.js";
import { buildImages, imagesDir, readBundleManifest, readImagesIndex, type ImagesIndex } from "../images/build.js";
import { imageCatalog, imagesForNode, refUnderRepository, type ImageName } from "../images/catalog.js";
import type { Cluster } from "../spec/schema.js";
import type { CheckResult, Host, RunContext, Task } from "../engine/task.js";

/** Where a node may see the bundle without an upload (a read-only mount the docker driver adds). */
export const NODE_BUNDLE_DIR = "/var/cache/kubeprov/bundle";
/** Where uploaded tars wait for `ctr images import` (removed right after). */
export const NODE_IMAGES_UPLOAD_DIR = "/var/lib/kubeprov/images";
export const IMAGES_TASK = "prepare/images";
export const ADDON_IMAGES_TASK = "prepare/images-addons";

export const CONTROLLER_IMAGES_TASK = "prepare/images-controllers";

/**
 * Which images a task imports: what the kubelet needs to start etcd and the API server
 * ("control-plane": pause, etcd, kube-apiserver), the controller manager's and the scheduler's
 * ("controllers": imported while the kubelet starts the others; their manifests wait for them),
 * or the add-ons' (after the API server answers).
 */
export type ImageSet = "control-plane" | "controllers" | "addons" | "all";
const ADDON_IMAGES: ImageName[] = ["kube-proxy", "coredns", "flannel", "local-path-provisioner", "metrics-server"];
const CONTROLLER_IMAGES: ImageName[] = ["kube-controller-manager", "kube-scheduler"];

export function bundlePath(cluster: Cluster): string {
  return cluster.spec.artifacts.path ? expandHome(cluster.spec.artifacts.path) : bundleDir(cluster.spec.kubernetesVersion);
}

/**
 * Where `host` sees the bundle without an upload: the bundle itself on the machine kubeprov runs
 * on (connection local, e.g. the none driver), else NODE_BUNDLE_DIR (absent unless mounted).
 */
export function bundleOnHost(cluster: Cluster, host: Host): string {
  return host.spec.connection === "local" ? bundlePath(cluster) : NODE_BUNDLE_DIR;
}

export function imagesWanted(cluster: Cluster, host: Host, set: ImageSet = "all"): ImageName[] {
  const all = imagesForNode({
    controlPlane: host.roles.includes("control-plane"),
    mode: cluster.spec.controlPlane.mode,
    flannel: cluster.spec.networking.cni === "flannel",
    storage: cluster.spec.addons.storage.enabled,
    metricsServer: cluster.spec.addons.metricsServer.enabled,
  });
  if (set === "all") return all;
  if (set === "addons") return all.filter((n) => ADDON_IMAGES.includes(n));
  if (set === "controllers") return all.filter((n) => CONTROLLER_IMAGES.includes(n));
  return all.filter((n) => !ADDON_IMAGES.includes(n) && !CONTROLLER_IMAGES.includes(n));
}

/** The bundle's images index, built once per run when missing or stale (needs the local Docker engine). */
async function ensureIndex(ctx: RunContext): Promise<ImagesIndex> {
  const key = "images/index";
  let p = ctx.shared.get(key) as Promise<ImagesIndex> | undefined;
  if (!p) {
    const bundle = bundlePath(ctx.cluster);
    p = (async () => {
      const have = readImagesIndex(bundle);
      const wanted = imageCatalog(readBundleManifest(bundle)).map((r) => r.name);
      const complete = have && wanted.every((n) => have.images.some((i) => i.name === n)) && have.images.every((i) => existsSync(join(imagesDir(bundle), i.file)));
      if (complete) return have!;
      ctx.log("info", `building the cluster's images from the bundle at ${bundle} (once)`);
      const r = await buildImages({ bundle, log: (m) => ctx.log("info", m) });
      return r.index;
    })();
    ctx.shared.set(key, p);
  }
  return p;
}

/**
 * The image names containerd has, listed once per host and run for the checks of every images
 * task (their sets do not overlap, so what one task imports never answers another's check);
 * applies always list afresh.
 */
function importedRefsForCheck(ctx: RunContext, host: Host): Promise<Set<string>> {
  const key = `images/refs/${host.name}`;
  let p = ctx.shared.get(key) as Promise<Set<string>> | undefined;
  if (!p) {
    p = importedRefs(host);
    p.catch(() => {}); // observed by every caller
    ctx.shared.set(key, p);
  }
  return p;
}

async function importedRefs(host: Host): Promise<Set<string>> {
  const r = await host.transport.exec("ctr -n k8s.io images ls -q", { sudo: true, check: false });
  if (r.code !== 0) {
    throw new HostError(host.name, IMAGES_TASK, "cannot list containerd's images (is containerd running?)", (r.stderr || r.stdout).trim());
  }
  return new Set(r.stdout.split("\n").map((l) => l.trim()).filter(Boolean));
}

/**
 * Each wanted image: `ref` the name the bundle's tar carries (upstream's), `want` the name the
 * cluster uses (under spec.images.repository when set: the same image, tagged so on the node).
 */
function refsFor(cluster: Cluster, host: Host, index: ImagesIndex | undefined, set: ImageSet): Array<{ name: ImageName; ref: string; want: string }> {
  const repository = cluster.spec.images.repository;
  return imagesWanted(cluster, host, set).map((name) => {
    const rec = index?.images.find((i) => i.name === name);
    const ref = rec?.ref ?? name;
    return { name, ref, want: repository ? refUnderRepository(repository, name, ref) : ref };
  });
}

/** Tags images already in containerd with the cluster's names (one ctr call each, in one command). */
async function tagAs(host: Host, task: string, pairs: Array<{ ref: string; want: string }>): Promise<void> {
  if (!pairs.length) return;
  const script = pairs.map((p) => `ctr -n k8s.io images tag --force ${shq(p.ref)} ${shq(p.want)} >/dev/null`).join(" && ");
  const r = await host.transport.exec(script, { sudo: true, check: false });
  if (r.code !== 0) throw new HostError(host.name, task, `tagging ${pairs.map((p) => p.want).join(", ")} failed`, (r.stderr || r.stdout).trim());
}

export function imagesTask(opts: { after?: string[]; set?: ImageSet; name?: string } = {}): Task {
  const set = opts.set ?? "all";
  const name = opts.name ?? IMAGES_TASK;
  return {
    name,
    phase: "prepare",
    description: `import the ${set === "all" ? "cluster's" : set === "control-plane" ? "kubelet's and API server's" : set} images into containerd (k8s.io namespace)`,
    hosts: (ctx) => ctx.hosts,
    ...(opts.after ? { after: opts.after } : {}),
    checkAhead: true,
    async check(host, ctx): Promise<CheckResult> {
      const index = readImagesIndex(bundlePath(ctx.cluster));
      // Before prepare ran (a dry run on a fresh host), containerd may not answer yet: all are to import.
      const have = await importedRefsForCheck(ctx, host).catch(() => new Set<string>());
      if (!index) return { needed: true, reason: `images not built yet (no ${join(imagesDir(bundlePath(ctx.cluster)), "images.json")}); import ${imagesWanted(ctx.cluster, host, set).join(", ")}` };
      const missing = refsFor(ctx.cluster, host, index, set).filter((r) => !have.has(r.want));
      if (!missing.length) return { needed: false, reason: `${refsFor(ctx.cluster, host, index, set).length} images present` };
      const toTag = missing.filter((m) => m.want !== m.ref && have.has(m.ref));
      const toImport = missing.filter((m) => !toTag.includes(m));
      return { needed: true, reason: [toImport.length ? `import ${toImport.map((m) => m.want).join(", ")}` : "", toTag.length ? `tag ${toTag.map((m) => m.want).join(", ")}` : ""].filter(Boolean).join("; ") };
    },
    async apply(host, ctx) {
      const index = await ensureIndex(ctx);
      const bundle = bundlePath(ctx.cluster);
      const have = await importedRefs(host);
      const wanted = refsFor(ctx.cluster, host, index, set).filter((r) => !have.has(r.want));
      // Present under the bundle's name but not the cluster's: a tag is enough.
      const retag = wanted.filter((r) => r.want !== r.ref);
      const missing = wanted.filter((r) => !have.has(r.ref));
      // Which tars the node already sees through the bundle mount (same size as ours).
      const recs = missing.map((m) => {
        const rec = index.images.find((i) => i.name === m.name);
        if (!rec) throw new HostError(host.name, name, `the bundle at ${bundle} has no ${m.name} image (built before it was part of the bundle)`, "rebuild it: bash scripts/build-bundle.sh, then node dist/scripts/images.js");
        return rec;
      });
      const seen = bundleOnHost(ctx.cluster, host);
      const probe = recs.map((r) => `stat -c '%s' ${shq(`${seen}/images/${r.file}`)} 2>/dev/null || echo none`).join("; ");
      const sizes = probe ? (await host.transport.exec(probe, { sudo: true, check: false })).stdout.trim().split("\n") : [];
      const imported: string[] = [];
      let uploaded = 0;
      // Upload the next tar while containerd imports the previous one.
      let importing: Promise<void> = Promise.resolve();
      const importOne = async (rec: (typeof recs)[number], path: string, remove: boolean) => {
        const r = await host.transport.exec(`ctr -n k8s.io images import ${shq(path)}${remove ? `; rc=$?; rm -f ${shq(path)}; exit $rc` : ""}`, {
          sudo: true,
          check: false,
          timeoutMs: 300_000,
        });
        if (r.code !== 0) throw new HostError(host.name, name, `importing ${rec.ref} failed`, (r.stderr || r.stdout).trim());
        imported.push(rec.ref);
      };
      try {
        for (const [i, rec] of recs.entries()) {
          const local = join(imagesDir(bundle), rec.file);
          const size = statSync(local).size;
          let path = `${seen}/images/${rec.file}`;
          let remove = false;
          if (sizes[i]?.trim() !== String(size)) {
            path = `${NODE_IMAGES_UPLOAD_DIR}/${rec.file}`;
            await host.transport.writeFile(path, readFileSync(local), { mode: 0o600 });
            uploaded += size;
            remove = true;
          }
          importing = importing.then(() => importOne(rec, path, remove));
        }
      } finally {
        await importing;
      }
      await tagAs(host, name, retag);
      const tagged = retag.length ? `; tagged ${retag.map((r) => r.want).join(", ")}` : "";
      return { detail: `${imported.length ? `imported ${imported.join(", ")}` : "nothing to import"}${uploaded ? ` (${(uploaded / 1e6).toFixed(0)} MB uploaded)` : ""}${tagged}` };
    },
  };
}
