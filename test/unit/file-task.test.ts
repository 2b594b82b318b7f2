// fileTask against real files: check compares bytes (sha256), mode and owner with one remote
// command; apply writes atomically with the mode; a converged file reports ok.
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { fileTask, parseFileState, fileDifferences, sha256Hex, octal, fileStateCommand } from "../../provisioner/engine/file-task.js";
import { runTasks } from "../../provisioner/engine/runner.js";
import { createRunContext } from "../../provisioner/engine/context.js";
import { MemoryReporter } from "../../provisioner/events.js";
import type { Host } from "../../provisioner/engine/task.js";
import { clusterFor, makeTmpHosts } from "../helpers/tmp-transport.js";

async function env(n = 1) {
  const made = await makeTmpHosts(n);
  const ctx = (dryRun = false) =>
    createRunContext({ cluster: clusterFor(made.hosts), source: "test", hosts: made.hosts, reporter: new MemoryReporter(), dryRun });
  const dirOf = (h: Host) => made.dirs[made.hosts.indexOf(h)];
  return { ...made, ctx, dirOf };
}

test("parseFileState and fileDifferences", () => {
  assert.deepEqual(parseFileState("absent\n"), { exists: false });
  const sha = sha256Hex("x");
  const st = parseFileState(`640 root:adm regular file\n${sha}\n`);
  assert.deepEqual(st, { exists: true, mode: 0o640, owner: "root:adm", type: "regular file", sha256: sha });
  assert.deepEqual(fileDifferences(st, { sha256: sha, mode: 0o640 }), []);
  assert.deepEqual(fileDifferences(st, { sha256: sha, mode: 0o640, owner: "root" }), []);
  assert.deepEqual(fileDifferences(st, { sha256: sha256Hex("y"), mode: 0o600, owner: "root:root" }), [
    "content differs",
    "mode 0640 -> 0600",
    "owner root:adm -> root:root",
  ]);
  assert.deepEqual(fileDifferences(parseFileState("755 root:root directory\n"), { sha256: sha, mode: 0o644 }), ["is a directory"]);
  assert.deepEqual(fileDifferences({ exists: false }, { sha256: sha, mode: 0o644 }), ["absent"]);
  assert.equal(octal(0o4755), "04755");
  assert.equal(octal(0o600), "0600");
  assert.throws(() => parseFileState("garbage"), /unexpected file state/);
});

test("fileStateCommand quotes awkward paths and reads them correctly", async () => {
  const e = await env();
  try {
    const p = join(e.dirs[0], "it's a file; echo pwned");
    writeFileSync(p, "hello");
    chmodSync(p, 0o604);
    const r = await e.hosts[0].transport.exec(fileStateCommand(p));
    const st = parseFileState(r.stdout);
    assert.equal(st.mode, 0o604);
    assert.equal(st.sha256, sha256Hex("hello"));
    assert.doesNotMatch(r.stdout, /pwned/);
  } finally {
    await e.cleanup();
  }
});

test("creates the file with exact bytes and mode; a second run is ok; drift in mode, content, owner is repaired", async () => {
  const e = await env(2);
  try {
    let renders = 0;
    const bin = Buffer.from([0, 1, 2, 255, 254, 10, 13, 0]);
    const t = () =>
      fileTask({
        name: "files/key",
        phase: "files",
        path: (h) => join(e.dirOf(h), "pki", "sub", "key.bin"),
        mode: 0o600,
        content: (h) => {
          renders++;
          return Buffer.concat([bin, Buffer.from(h.name)]);
        },
      });
    const s1 = await runTasks([t()], e.ctx());
    assert.equal(s1.changed, 2);
    assert.equal(renders, 2, "content rendered once per host for check and apply");
    for (const [i, d] of e.dirs.entries()) {
      const p = join(d, "pki", "sub", "key.bin");
      assert.deepEqual(readFileSync(p), Buffer.concat([bin, Buffer.from(`h${i}`)]));
      assert.equal(statSync(p).mode & 0o7777, 0o600);
      assert.equal(statSync(join(d, "pki")).mode & 0o7777, 0o755);
      // The atomic write left no temporary file behind.
      assert.deepEqual(readdirSync(join(d, "pki", "sub")), ["key.bin"]);
    }
    const s2 = await runTasks([t()], e.ctx());
    assert.deepEqual([s2.changed, s2.unchanged], [0, 2]);
    assert.match(s2.results[0].reason!, /key\.bin up to date$/);

    // Drift: h0's mode, h1's content.
    const p0 = join(e.dirs[0], "pki", "sub", "key.bin");
    const p1 = join(e.dirs[1], "pki", "sub", "key.bin");
    chmodSync(p0, 0o644);
    writeFileSync(p1, "tampered");
    const dry = await runTasks([t()], e.ctx(true));
    assert.deepEqual(
      dry.results.map((r) => [r.status, r.dryRun, r.reason?.replace(/^.*key\.bin/, "…")]),
      [
        ["changed", true, "…: mode 0644 -> 0600"],
        ["changed", true, "…: content differs"],
      ],
    );
    assert.equal(readFileSync(p1, "utf8"), "tampered", "dry run wrote");
    assert.equal(statSync(p0).mode & 0o7777, 0o644, "dry run chmodded");
    const s3 = await runTasks([t()], e.ctx());
    assert.equal(s3.changed, 2);
    assert.equal(statSync(p0).mode & 0o7777, 0o600);
    assert.deepEqual(readFileSync(p1), Buffer.concat([bin, Buffer.from("h1")]));
    const s4 = await runTasks([t()], e.ctx());
    assert.equal(s4.changed, 0);
  } finally {
    await e.cleanup();
  }
});

test("owner is compared and set when given", async () => {
  const e = await env();
  try {
    const p = join(e.dirs[0], "owned.conf");
    const t = (owner: string) => fileTask({ name: "f", phase: "files", path: p, mode: 0o644, owner, content: "x=1\n" });
    const s1 = await runTasks([t("root:root")], e.ctx());
    assert.equal(s1.changed, 1);
    const s2 = await runTasks([t("nobody:nogroup")], e.ctx());
    assert.equal(s2.changed, 1);
    assert.match(s2.results[0].reason!, /owner root:root -> nobody:nogroup/);
    assert.equal(execFileSync("stat", ["-c", "%U:%G", p]).toString().trim(), "nobody:nogroup");
    const s3 = await runTasks([t("nobody")], e.ctx());
    assert.equal(s3.changed, 0);
  } finally {
    await e.cleanup();
  }
});

test("a directory where the file should be fails the task and is left alone; afterWrite runs only on a write", async () => {
  const e = await env();
  try {
    const p = join(e.dirs[0], "conf.d");
    mkdirSync(p);
    const s = await runTasks([fileTask({ name: "f", phase: "files", path: p, mode: 0o644, content: "a" })], e.ctx());
    assert.equal(s.failed, 1);
    assert.match(s.results[0].error!, /is a directory, not a regular file: refusing to replace it/);
    assert.ok(statSync(p).isDirectory());

    let reloads = 0;
    const unit = () =>
      fileTask({
        name: "u",
        phase: "files",
        path: join(e.dirs[0], "x.service"),
        mode: 0o644,
        content: "[Unit]\n",
        afterWrite: async (h) => {
          reloads++;
          await h.transport.exec("touch reloaded");
        },
      });
    await runTasks([unit()], e.ctx());
    await runTasks([unit()], e.ctx());
    assert.equal(reloads, 1);
    assert.ok(existsSync(join(e.dirs[0], "reloaded")));
  } finally {
    await e.cleanup();
  }
});
