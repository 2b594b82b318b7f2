// The CLI as a user runs it (node bin/kubeprov.js): --help everywhere, exit codes for usage
// errors, -o validation on every command that has it, and working completion scripts.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { Command } from "commander";
import { buildProgram, run } from "../../provisioner/cli/main.js";

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

/**
 * The same run() that bin/kubeprov.js calls, in this process (for loops over every command, where
 * a node process per case would take minutes); stdout and stderr are captured.
 */
async function runHere(args: string[]): Promise<Result> {
  let stdout = "";
  let stderr = "";
  const out = process.stdout.write.bind(process.stdout);
  const err = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((c: string | Uint8Array) => ((stdout += c.toString()), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => ((stderr += c.toString()), true)) as typeof process.stderr.write;
  const saved = process.exitCode;
  try {
    const code = await run(args);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = out;
    process.stderr.write = err;
    process.exitCode = saved;
  }
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
    const results: Result[] = [];
    for (const { path } of paths) results.push(await runHere([...path, "--help"]));
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

  test("apply's --force and --drain-timeout without --prune exit 2 before any host is reached", async () => {
    for (const extra of [["--force"], ["--drain-timeout", "30"]]) {
      const r = await runHere(["apply", "-f", "/nonexistent/cluster.yaml", ...extra]);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /: only with --prune/);
    }
  });

  test("an unknown option exits 2", async () => {
    const r = await kubeprov(["config", "validate", "--frobnicate"]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown option '--frobnicate'/);
  });

  test("-o yaml is rejected with exit 2 by every command that has -o", async () => {
    const withOutput = commandPaths().filter(({ cmd }) => cmd.options.some((o) => o.long === "--output"));
    assert.ok(withOutput.some(({ path }) => path.join(" ") === "config validate"));
    const results: Result[] = [];
    for (const { path } of withOutput) results.push(await runHere([...path, "-o", "yaml", "-f", "/nonexistent/cluster.yaml"]));
    // And once through the binary itself.
    const real = await kubeprov(["config", "validate", "-o", "yaml", "-f", "-"], "");
    assert.equal(real.code, 2);
    assert.match(real.stderr, /argument 'yaml' is invalid/);
    results.forEach((r, i) => {
      const p = withOutput[i].path.join(" ");
      assert.equal(r.code, 2, `kubeprov ${p} -o yaml exited ${r.code}`);
      assert.match(r.stderr, /-o, --output <format>' argument 'yaml' is invalid/, `kubeprov ${p}: ${r.stderr}`);
    });
  });

  test("--concurrency takes a positive whole number on every command that has it (else exit 2)", async () => {
    const withConcurrency = commandPaths().filter(({ cmd }) => cmd.options.some((o) => o.long === "--concurrency"));
    const cases = withConcurrency.flatMap(({ path }) => ["0", "-3", "two", "1.5"].map((v) => ({ path, v })));
    const results: Result[] = [];
    for (const { path, v } of cases) results.push(await runHere([...path, `--concurrency=${v}`, "-f", "/nonexistent/cluster.yaml"]));
    results.forEach((r, i) => {
      const p = `kubeprov ${cases[i].path.join(" ")} --concurrency=${cases[i].v}`;
      assert.equal(r.code, 2, `${p} exited ${r.code}`);
      assert.match(r.stderr, /--concurrency <n>' argument .* is invalid/, `${p}: ${r.stderr}`);
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
  let scriptFile = "";
  before(async () => {
    // The script as `kubeprov completion bash` prints it, generated once for the cases below.
    const r = await runHere(["completion", "bash"]);
    assert.equal(r.code, 0);
    scriptFile = join(mkdtempSync(join(tmpdir(), "kpt-completion-")), "kubeprov.bash");
    writeFileSync(scriptFile, r.stdout);
  });
  after(() => {
    if (scriptFile) rmSync(dirname(scriptFile), { recursive: true, force: true });
  });
  /** Runs the completion function as bash would for the words typed so far; returns COMPREPLY. */
  const complete = (words: string[]) => {
    const arr = words.map((w) => `'${w}'`).join(" ");
    const r = bash(`source '${scriptFile}' && COMP_WORDS=(${arr}) && COMP_CWORD=${words.length - 1} && _kubeprov && printf '%s\\n' "\${COMPREPLY[@]}"`);
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

  test("bash: --name completes the clusters under the state directory", () => {
    const home = mkdtempSync(join(tmpdir(), "kpt-home-"));
    try {
      for (const n of ["alpha", "beta", "kpt-x"]) mkdirSync(join(home, "clusters", n), { recursive: true });
      const r = bash(`export KUBEPROV_HOME='${home}'; source '${scriptFile}' && COMP_WORDS=(kubeprov delete --name '') && COMP_CWORD=3 && _kubeprov && printf '%s\\n' "\${COMPREPLY[@]}"`);
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(r.stdout.split("\n").filter(Boolean), ["alpha", "beta", "kpt-x"]);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
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
