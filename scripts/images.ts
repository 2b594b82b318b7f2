// `npm run artifacts` (after scripts/build-bundle.sh): builds the cluster's images from the bundle
// with the local Docker engine and saves them to <bundle>/images/*.tar + images.json.
// Usage: node dist/scripts/images.js [vX.Y.Z] [--force]
import { DEFAULT_KUBERNETES_VERSION } from "../provisioner/constants.js";
import { bundleDir } from "../provisioner/paths.js";
import { buildImages } from "../provisioner/images/build.js";
import { printError } from "../provisioner/cli/main.js";
import { exitCodeOf } from "../provisioner/errors.js";

const args = process.argv.slice(2);
const version = args.find((a) => a.startsWith("v")) ?? DEFAULT_KUBERNETES_VERSION;
const started = Date.now();
try {
  const r = await buildImages({
    bundle: bundleDir(version),
    force: args.includes("--force"),
    log: (m) => process.stderr.write(`[images] ${m}\n`),
  });
  for (const img of r.index.images) process.stdout.write(`${img.ref}\t${img.file}\tsha256:${img.sha256}\n`);
  process.stderr.write(`[images] ${r.built.length} built, ${r.unchanged.length} unchanged in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
} catch (e) {
  printError(e);
  process.exitCode = exitCodeOf(e);
}
