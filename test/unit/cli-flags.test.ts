// Flags shared by the commands that run preflight and bootstrap (init, join, apply, up): nonsense
// is refused with exit 2 before any file is read, any host is contacted or any machine is made.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { packageRoot } from "../../provisioner/paths.js";

const BIN = join(packageRoot(), "bin", "kubeprov.js");

function run(home: string, args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { env: { ...process.env, KUBEPROV_HOME: home, CI: "1" }, encoding: "utf8" });
  return { code: r.status, stderr: r.stderr };
}

const cases: Array<{ args: string[]; says: RegExp }> = [
  { args: ["up", "--name", "kpt-flags", "--ignore-preflight-errors=Bogus"], says: /unknown check ID Bogus/ },
  { args: ["init", "--name", "kpt-flags", "--ignore-preflight-errors=Port-6443,Nope"], says: /unknown check ID Nope/ },
  { args: ["apply", "--name", "kpt-flags", "--ignore-preflight-errors=Nope"], says: /unknown check ID Nope/ },
  { args: ["join", "--name", "kpt-flags", "--ignore-preflight-errors=Nope"], says: /unknown check ID Nope/ },
  { args: ["init", "--name", "kpt-flags", "--token", "BAD.token"], says: /--token: a bootstrap token must match/ },
  { args: ["join", "--name", "kpt-flags", "--token", "abcdef.short"], says: /--token: a bootstrap token must match/ },
  { args: ["init", "--name", "kpt-flags", "--token-ttl", "soon"], says: /ttl/i },
];

for (const c of cases) {
  test(`${c.args.join(" ")}: exit 2, nothing made`, () => {
    const home = mkdtempSync(join(tmpdir(), "kpt-flags-"));
    try {
      const r = run(home, c.args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, c.says);
      // The cluster does not exist and was not created (no cluster directory, no state written).
      assert.equal(existsSync(join(home, "clusters", "kpt-flags")), false);
      // The token value itself is never echoed back.
      if (c.args.includes("--token")) assert.ok(!r.stderr.includes(c.args[c.args.indexOf("--token") + 1]), r.stderr);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });
}
