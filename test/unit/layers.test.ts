// Modules depend one way. Every provisioner/**/*.ts file belongs to one layer; a file may import its
// own layer and the layers below it, never one above. Lowest first:
//
//   1. base       constants.ts errors.ts paths.ts events.ts render.ts
//   2. model      spec/ pki/ output/ images/catalog.ts images/registries.ts: the cluster model,
//                 certificate material, image names and event rendering; no host is reached
//   3. transport  transport/: how a host is reached (ssh2, local)
//   4. engine     engine/: tasks, runner, pipeline, lock, the Host the runner hands to tasks
//   5. host work  tasks/ bootstrap/ preflight/ images/ artifacts.ts, and plan/topology.ts (which
//                 host plays which role: asked by tasks and bootstrap as much as by plans)
//   6. plan       plan/: which tasks a command runs, composed from the tasks
//   7. operations drivers/ lifecycle/ status/ etcd/: machines, and work around whole clusters
//   8. cli        cli/: commands, which wire everything below
//
// An entry naming a file overrides its directory's. Static imports, `export … from`, type-only
// imports and dynamic import("…") all count: a type names the module it comes from as much as a value.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join, posix, relative, sep } from "node:path";
import { packageRoot } from "../../provisioner/paths.js";

const LAYERS: Array<{ name: string; members: string[] }> = [
  { name: "base", members: ["constants.ts", "errors.ts", "paths.ts", "events.ts", "render.ts"] },
  { name: "model", members: ["spec/", "pki/", "output/", "images/catalog.ts", "images/registries.ts"] },
  { name: "transport", members: ["transport/"] },
  { name: "engine", members: ["engine/"] },
  { name: "host work", members: ["tasks/", "bootstrap/", "preflight/", "images/", "artifacts.ts", "plan/topology.ts"] },
  { name: "plan", members: ["plan/"] },
  { name: "operations", members: ["drivers/", "lifecycle/", "status/", "etcd/"] },
  { name: "cli", members: ["cli/"] },
];

/** The layer index of a path relative to provisioner/ (posix separators): the longest matching entry wins, -1 for none. */
function layerOf(path: string): number {
  let best = -1;
  let bestLength = -1;
  LAYERS.forEach((layer, i) => {
    for (const m of layer.members) {
      const hit = m.endsWith("/") ? path.startsWith(m) : path === m;
      if (hit && m.length > bestLength) {
        best = i;
        bestLength = m.length;
      }
    }
  });
  return best;
}

/** The module specifiers a TypeScript source imports: static, `export … from`, side-effect and dynamic. */
function importSpecifiers(source: string): string[] {
  // Whole-line comments only: a comment that shows an import must not count as one.
  const code = source
    .split("\n")
    .filter((l) => !/^\s*(\/\/|\/\*|\*)/.test(l))
    .join("\n");
  const found: string[] = [];
  const statics = /(?:^|[;}\s])(?:import|export)\s+(?:type\s+)?(?:[\w$*{}\s,]+?\s+from\s*)?["']([^"']+)["']/g;
  const dynamics = /\bimport\s*\(\s*["']([^"']+)["']\s*\)/g;
  for (const m of code.matchAll(statics)) found.push(m[1]!);
  for (const m of code.matchAll(dynamics)) found.push(m[1]!);
  return found;
}

interface Crossing {
  file: string;
  specifier: string;
  why: string;
}

/** Every import against the order, given the sources by path relative to provisioner/. */
function crossings(sources: Map<string, string>): Crossing[] {
  const out: Crossing[] = [];
  for (const [file, source] of sources) {
    const from = layerOf(file);
    if (from < 0) {
      out.push({ file, specifier: "", why: "the file is in no layer: add it to LAYERS" });
      continue;
    }
    for (const specifier of importSpecifiers(source)) {
      if (!specifier.startsWith(".")) continue; // packages and node: built-ins
      const target = posix.normalize(posix.join(posix.dirname(file), specifier)).replace(/\.js$/, ".ts");
      if (target.startsWith("../")) {
        out.push({ file, specifier, why: "imports from outside provisioner/" });
        continue;
      }
      const to = layerOf(target);
      if (to > from) out.push({ file, specifier, why: `layer ${LAYERS[from]!.name} imports layer ${LAYERS[to]!.name}` });
      else if (to < 0) out.push({ file, specifier, why: `${target} is in no layer` });
    }
  }
  return out;
}

function provisionerSources(): Map<string, string> {
  const root = join(packageRoot(), "provisioner");
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else if (name.endsWith(".ts")) out.set(relative(root, p).split(sep).join("/"), readFileSync(p, "utf8"));
    }
  };
  walk(root);
  return out;
}

test("the check reports wrong-way imports of every form, and accepts imports downwards", () => {
  const sources = new Map([
    ["engine/runner.ts", 'import { a } from "../tasks/facts.js";\nimport type { B } from "../plan/cluster.js";'],
    ["transport/pool.ts", 'import {\n  C,\n  type D,\n} from "../engine/task.js";\nexport { E } from "../drivers/docker/nodeimage.js";'],
    ["pki/store.ts", 'async function f() { return import("../transport/transport.js"); }\n// import { x } from "../cli/main.js";'],
    ["tasks/certs.ts", 'import { pki } from "../pki/plan.js";\nimport { t } from "./facts.js";\nimport { x } from "node:fs";\nimport { topo } from "../plan/topology.js";'],
    ["plan/cluster.ts", 'import { certs } from "../tasks/certs.js";'],
    ["newdir/x.ts", ""],
  ]);
  const found = crossings(sources).map((c) => `${c.file} ${c.specifier}`.trim());
  assert.deepEqual(found, [
    "engine/runner.ts ../tasks/facts.js",
    "engine/runner.ts ../plan/cluster.js",
    "transport/pool.ts ../engine/task.js",
    "transport/pool.ts ../drivers/docker/nodeimage.js",
    "pki/store.ts ../transport/transport.js",
    "newdir/x.ts",
  ]);
});

test("every provisioner module imports only its own layer and the layers below", () => {
  const sources = provisionerSources();
  const specifiers = [...sources.values()].reduce((n, s) => n + importSpecifiers(s).filter((x) => x.startsWith(".")).length, 0);
  // The walk really read the tree (a check over nothing would pass).
  assert.ok(sources.size > 100 && specifiers > 500, `read ${sources.size} files with ${specifiers} relative imports`);
  for (const layer of LAYERS) assert.ok([...sources.keys()].some((f) => layerOf(f) === LAYERS.indexOf(layer)), `layer ${layer.name} has files`);
  const wrong = crossings(sources);
  assert.deepEqual(
    wrong.map((c) => `${c.file}: ${c.specifier ? `"${c.specifier}" ` : ""}(${c.why})`),
    [],
    "imports against the layer order (see the top of test/unit/layers.test.ts)",
  );
});
