// The CLI as a user runs it (node bin/kubeprov.js): --help everywhere, exit codes for usage
// errors, -o validation on every command that has it, and working completion scripts.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { buildProgram } from "../../provisioner/cli/main.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const bin = join(root, "bin", "kubeprov.js");

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function kubeprov(args: string[], input?: string): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [bin, ...args],
      { encoding: "utf8", timeout: 120_000, env: { ...process.env, CI: "true" } },
      (err, stdout, stderr) => {
        const e = err as { code?: unknown; signal?: string } | null;
        const code = e ? (typeof e.code === "number" ? e.code : 1) : 0;
        resolve({ code, stdout, stderr: e?.signal ? `${stderr}(killed by ${e.signal}: timed out)` : stderr });
      },
    );
    if (input !== undefined) child.stdin!.end(input);
    else child.stdin!.end();
  });
}

/** Runs fn over items, at most `limit` at a time (each run is a whole node process). */
async function mapLimit<T, R>(items: T[], limit: number, fn: (t: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Every command path in the tree, e.g. ["config", "validate"]. */
function commandPaths(): Array<{ path: string[]; cmd: Command }> {
  const out: Array<{ path: string[]; cmd: Command }> = [];
  const walk = (c: Command, path: string[]) => {
    for (const sub of c.commands) {
      out.push({ path: [...path, sub.name()], cmd: sub });
      walk(sub, [...path, sub.name()]);
    }
  };
  walk(buildProgram(), []);
  return out;
}

describe("kubeprov --help and exit codes", () => {
  test("--help of the program and of every command exits 0 and prints usage", async () => {
    const top = await kubeprov(["--help"]);
    assert.equal(top.code, 0);
    const required = ["init", "join", "apply", "reset", "up", "delete", "status", "preflight", "certs", "token", "kubeconfig", "node", "ssh", "image", "config", "completion"];
    for (const name of required) assert.match(top.stdout, new RegExp(`^  ${name}\\b`, "m"), `${name} missing from --help`);
    const paths = commandPaths();
    assert.ok(paths.length >= required.length);
    const results = await mapLimit(paths, 4, ({ path }) => kubeprov([...path, "--help"]));
    results.forEach((r, i) => {
      const p = paths[i].path.join(" ");
      assert.equal(r.code, 0, `kubeprov ${p} --help exited ${r.code}: ${r.stderr}`);
      assert.match(r.stdout, new RegExp(`^Usage: kubeprov ${p}`, "m"), `kubeprov ${p} --help`);
    });
  });

  test("an unknown command exits 2", async () => {
    const r = await kubeprov(["frobnicate"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown command 'frobnicate'/);
  });

  test("an unknown option exits 2", async () => {
    const r = await kubeprov(["config", "validate", "--frobnicate"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option '--frobnicate'/);
  });

  test("-o yaml is rejected with exit 2 by every command that has -o", async () => {
    const withOutput = commandPaths().filter(({ cmd }) => cmd.options.some((o) => o.long === "--output"));
    assert.ok(withOutput.some(({ path }) => path.join(" ") === "config validate"));
    const results = await mapLimit(withOutput, 4, ({ path }) => kubeprov([...path, "-o", "yaml", "-f", "/nonexistent/cluster.yaml"]));
    results.forEach((r, i) => {
      const p = withOutput[i].path.join(" ");
      assert.equal(r.code, 2, `kubeprov ${p} -o yaml exited ${r.code}`);
      assert.match(r.stderr, /-o, --output <format>' argument 'yaml' is invalid/, `kubeprov ${p}: ${r.stderr}`);
    });
  });

  test("a missing -f/--name is a usage error with exit 2", async () => {
    const r = await kubeprov(["config", "validate"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /give -f\/--file FILE/);
  });
});

describe("kubeprov completion", () => {
  const bash = (script: string) => spawnSync("bash", ["-c", script], { encoding: "utf8", env: { ...process.env, KP: `${process.execPath} ${bin}` } });
  /** Runs the completion function as bash would for the words typed so far; returns COMPREPLY. */
  const complete = (words: string[]) => {
    const arr = words.map((w) => `'${w}'`).join(" ");
    const r = bash(`source <($KP completion bash) && COMP_WORDS=(${arr}) && COMP_CWORD=${words.length - 1} && _kubeprov && printf '%s\\n' "\${COMPREPLY[@]}"`);
    assert.equal(r.status, 0, r.stderr);
    return r.stdout.split("\n").filter(Boolean);
  };

  test("bash: the script loads and registers the completion", () => {
    const r = bash("source <($KP completion bash) && complete -p kubeprov");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "complete -o default -F _kubeprov kubeprov");
  });

  test("bash: completing `kubeprov ce` gives certs", () => {
    assert.deepEqual(complete(["kubeprov", "ce"]), ["certs"]);
  });

  test("bash: every command, sub-command, option and -o choice is offered", () => {
    const top = complete(["kubeprov", ""]);
    for (const c of buildProgram().commands) assert.ok(top.includes(c.name()), `${c.name()} not completed`);
    assert.deepEqual(complete(["kubeprov", "config", ""]).sort(), ["help", "print-defaults", "validate", "view"]);
    const opts = complete(["kubeprov", "config", "validate", "--"]);
    assert.deepEqual(opts.sort(), ["--file", "--help", "--name", "--output"]);
    assert.deepEqual(complete(["kubeprov", "config", "validate", "-o", ""]), ["text", "json"]);
    // An option's value is skipped when finding the command: -f FILE does not end the path.
    assert.deepEqual(complete(["kubeprov", "config", "validate", "-f", "x.yaml", "--na"]), ["--name"]);
    assert.deepEqual(complete(["kubeprov", "completion", ""]), ["bash", "zsh"]);
  });

  test("bash: a file is completed after -f", () => {
    const got = complete(["kubeprov", "config", "validate", "-f", join(root, "package.j")]);
    assert.deepEqual(got, [join(root, "package.json")]);
  });

  test("zsh: the script uses zsh's bash completion layer and the same function", async () => {
    const r = await kubeprov(["completion", "zsh"]);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^#compdef kubeprov$/m);
    assert.match(r.stdout, /bashcompinit/);
    assert.match(r.stdout, /^complete -o default -F _kubeprov kubeprov$/m);
    const zsh = spawnSync("zsh", ["-c", "exit 0"]);
    if (!zsh.error) {
      const z = spawnSync("zsh", ["-c", `source <($KP completion zsh) && complete -p kubeprov`], { encoding: "utf8", env: { ...process.env, KP: `${process.execPath} ${bin}` } });
      assert.equal(z.status, 0, z.stderr);
    }
  });

  test("an unknown shell exits 2", async () => {
    const r = await kubeprov(["completion", "fish"]);
    assert.equal(r.code, 2);
  });
});
