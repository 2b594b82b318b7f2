// kubeprov image build node [--force] | image list: the docker driver's node image.
import type { Command } from "commander";
import { UsageError } from "../../errors.js";
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
