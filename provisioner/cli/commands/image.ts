// kubeprov image build node [--force] | image list: the docker driver's node image.
// kubeprov image load --name C IMAGE|FILE.tar [--node N]: an image into every node's containerd.
import type { Command } from "commander";
import { RuntimeFailure, UsageError } from "../../errors.js";
import { checkDaemon } from "../../drivers/docker/cli.js";
import { ensureNodeImage, listNodeImages, nodeImageRef } from "../../drivers/docker/nodeimage.js";
import { outputOption, type OutputFormat } from "../options.js";

export function register(program: Command): void {
  const image = program.command("image").description("images kubeprov builds locally (the docker driver's node image)");
  image
    .command("build")
    .description("build the node image (kubeprov/node:<recipe hash>) unless it exists; --force rebuilds it")
    .argument("<what>", "node")
    .option("--force", "rebuild even when the image exists", false)
    .action(async (what: string, o: { force: boolean }) => {
      if (what !== "node") throw new UsageError(`image build ${JSON.stringify(what)}: only "node" is built by this command`);
      await checkDaemon();
      const r = await ensureNodeImage({ force: o.force, log: (m) => process.stderr.write(m + "\n") });
      process.stdout.write(`${r.image} ${r.built ? `built in ${(r.durationMs / 1000).toFixed(1)} s` : "exists (recipe unchanged)"}\n`);
    });
  image
    .command("load")
    .description("load a local Docker image or a `docker save` archive into every node's containerd (nodes that have it are skipped)")
    .argument("<image>", "an image of the local Docker engine, or FILE.tar")
    .requiredOption("--name <name>", "cluster name")
    .option("--node <node>", "only this node")
    .action(async (source: string, o: { name: string; node?: string }) => {
      const { loadTarget } = await import("../target.js");
      const { cluster } = await loadTarget({ name: o.name });
      if (o.node && !cluster.spec.hosts.some((h) => h.name === o.node))
        throw new UsageError(`--node ${o.node}: not a node of ${o.name} (${cluster.spec.hosts.map((h) => h.name).join(", ")})`);
      const { imageArchive, loadInto } = await import("../../images/load.js");
      const archive = await imageArchive(source);
      const { connectHosts, closeHosts } = await import("../../engine/hosts.js");
      const one = o.node ? { ...cluster, spec: { ...cluster.spec, hosts: cluster.spec.hosts.filter((h) => h.name === o.node) } } : cluster;
      const hosts = await connectHosts(one, { acceptNewHostKeys: false });
      const failed: string[] = [];
      try {
        await Promise.all(
          hosts.map(async (h) => {
            const t0 = Date.now();
            try {
              const what = await loadInto(h, archive);
              process.stderr.write(`${h.name}: ${what === "present" ? "already has" : "imported"} ${archive.tags.join(", ") || archive.id} (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`);
            } catch (e) {
              failed.push(h.name);
              process.stderr.write(`${h.name}: FAILED: ${(e as Error).message}${(e as { details?: string }).details ? `\n${(e as { details?: string }).details}` : ""}\n`);
            }
          }),
        );
      } finally {
        await closeHosts(hosts);
      }
      if (failed.length) throw new RuntimeFailure(`image load failed on ${failed.join(", ")}`);
    });
  const list = image.command("list").description("list the node images; * marks the one the current recipe uses");
  outputOption(list);
  list.action(async (o: { output: OutputFormat }) => {
    await checkDaemon();
    const rows = await listNodeImages();
    if (o.output === "json") {
      process.stdout.write(JSON.stringify({ current: nodeImageRef(), images: rows }, null, 2) + "\n");
      return;
    }
    if (rows.length === 0) process.stdout.write(`no node image yet (the current recipe makes ${nodeImageRef()}; \`kubeprov image build node\`)\n`);
    for (const r of rows) process.stdout.write(`${r.current ? "*" : " "} ${r.image}  ${r.id}  ${r.size}  ${r.created}\n`);
  });
}
