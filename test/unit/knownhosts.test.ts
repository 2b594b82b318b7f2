// known_hosts parsing and matching (pure), with keys and hashes made by OpenSSH's own ssh-keygen.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  parseKnownHosts,
  verifyHostKey,
  entryMatchesHost,
  formatKnownHostLine,
  knownKeyTypes,
  preferredHostKeyAlgorithms,
  keyTypeOf,
  fingerprint,
  appendKnownHost,
  readKnownHostsFile,
} from "../../provisioner/transport/knownhosts.js";

let dir: string;
const keys: Record<string, { line: string; blob: Buffer }> = {};

function gen(name: string, type: string): void {
  const path = join(dir, name);
  const r = spawnSync("ssh-keygen", ["-q", "-t", type, "-N", "", "-f", path, ...(type === "rsa" ? ["-b", "2048"] : [])]);
  assert.equal(r.status, 0);
  const line = readFileSync(`${path}.pub`, "utf8").trim();
  keys[name] = { line, blob: Buffer.from(line.split(" ")[1], "base64") };
}
const pub = (k: string) => keys[k].line.split(" ").slice(0, 2).join(" ");

before(() => {
  dir = mkdtempSync(join(tmpdir(), "kpt-kh-"));
  gen("ed", "ed25519");
  gen("ed2", "ed25519");
  gen("ec", "ecdsa");
  gen("rsa", "rsa");
});
after(() => rmSync(dir, { recursive: true, force: true }));

test("plain entries, comma-separated lists, [host]:port, wildcards and negation", () => {
  const entries = parseKnownHosts(
    [
      "# comment",
      "",
      `web1,10.0.0.5 ${pub("ed")} comment here`,
      `[10.0.0.6]:2222 ${pub("ec")}`,
      `*.example.org,!bad.example.org ${pub("rsa")}`,
    ].join("\n"),
  );
  assert.equal(entries.length, 3);
  assert.equal(entries[0].line, 3);
  assert.equal(verifyHostKey(entries, "10.0.0.5", 22, keys.ed.blob).status, "trusted");
  assert.equal(verifyHostKey(entries, "web1", 22, keys.ed.blob).status, "trusted");
  // The same address on another port is another host.
  assert.equal(verifyHostKey(entries, "10.0.0.5", 2222, keys.ed.blob).status, "unknown");
  assert.equal(verifyHostKey(entries, "10.0.0.6", 2222, keys.ec.blob).status, "trusted");
  assert.equal(verifyHostKey(entries, "10.0.0.6", 22, keys.ec.blob).status, "unknown");
  assert.equal(verifyHostKey(entries, "a.example.org", 22, keys.rsa.blob).status, "trusted");
  assert.equal(verifyHostKey(entries, "bad.example.org", 22, keys.rsa.blob).status, "unknown");
});

test("a different key of the same type is 'changed'; known only with other types is 'other-type'", () => {
  const entries = parseKnownHosts(`10.0.0.5 ${pub("ed")}\n10.0.0.7 ${pub("rsa")}\n`);
  const v = verifyHostKey(entries, "10.0.0.5", 22, keys.ed2.blob);
  assert.equal(v.status, "changed");
  assert.equal(v.status === "changed" && v.expected[0].line, 1);
  const o = verifyHostKey(entries, "10.0.0.7", 22, keys.ec.blob);
  assert.equal(o.status, "other-type");
  assert.deepEqual(o.status === "other-type" && o.knownTypes, ["ssh-rsa"]);
});

test("several key types for one host: any of them is trusted; known types go first in the algorithm list", () => {
  const entries = parseKnownHosts(`h ${pub("rsa")}\nh ${pub("ec")}\n`);
  assert.equal(verifyHostKey(entries, "h", 22, keys.rsa.blob).status, "trusted");
  assert.equal(verifyHostKey(entries, "h", 22, keys.ec.blob).status, "trusted");
  assert.deepEqual(knownKeyTypes(entries, "h", 22), ["ssh-rsa", "ecdsa-sha2-nistp256"]);
  const algs = preferredHostKeyAlgorithms(knownKeyTypes(entries, "h", 22));
  assert.deepEqual(algs.slice(0, 4), ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa", "ecdsa-sha2-nistp256"]);
  assert.ok(algs.includes("ssh-ed25519"));
});

test("hashed entries written by ssh-keygen -H match, for port 22 and [host]:port", () => {
  const file = join(dir, "hashed_known_hosts");
  writeFileSync(file, `10.1.2.3 ${pub("ed")}\n[10.1.2.4]:2200 ${pub("ec")}\n`);
  const r = spawnSync("ssh-keygen", ["-H", "-f", file]);
  assert.equal(r.status, 0);
  const text = readFileSync(file, "utf8");
  assert.ok(!text.includes("10.1.2.3") && text.startsWith("|1|"));
  const entries = parseKnownHosts(text);
  assert.ok(entries.every((e) => e.hashed));
  assert.equal(verifyHostKey(entries, "10.1.2.3", 22, keys.ed.blob).status, "trusted");
  assert.equal(verifyHostKey(entries, "10.1.2.4", 2200, keys.ec.blob).status, "trusted");
  assert.equal(verifyHostKey(entries, "10.1.2.4", 22, keys.ec.blob).status, "unknown");
  assert.equal(verifyHostKey(entries, "10.1.2.3", 22, keys.ed2.blob).status, "changed");
});

test("@revoked keys are refused even when another line trusts them; @cert-authority lines are not host keys", () => {
  const entries = parseKnownHosts(`h ${pub("ed")}\n@revoked * ${pub("ed")}\n@cert-authority h ${pub("ec")}\n`);
  assert.equal(verifyHostKey(entries, "h", 22, keys.ed.blob).status, "revoked");
  assert.equal(verifyHostKey(entries, "h", 22, keys.ec.blob).status, "other-type");
});

test("lines we write are read back by OpenSSH (ssh-keygen -F), plain and hashed", () => {
  const file = join(dir, "written");
  appendKnownHost(file, "10.9.9.9", 22, keys.ed.blob);
  appendKnownHost(file, "10.9.9.8", 2022, keys.rsa.blob, { hashed: true });
  const text = readFileSync(file, "utf8");
  assert.match(text, /^10\.9\.9\.9 ssh-ed25519 /);
  assert.match(text.split("\n")[1], /^\|1\|[^|]+\|[^ ]+ ssh-rsa /);
  const f1 = spawnSync("ssh-keygen", ["-F", "10.9.9.9", "-f", file], { encoding: "utf8" });
  assert.equal(f1.status, 0);
  const f2 = spawnSync("ssh-keygen", ["-F", "[10.9.9.8]:2022", "-f", file], { encoding: "utf8" });
  assert.equal(f2.status, 0, f2.stdout + f2.stderr);
  const entries = readKnownHostsFile(file);
  assert.equal(verifyHostKey(entries, "10.9.9.8", 2022, keys.rsa.blob).status, "trusted");
  assert.ok(entryMatchesHost(entries[0], "10.9.9.9", 22));
});

test("key type, fingerprint as ssh-keygen -l prints it", () => {
  assert.equal(keyTypeOf(keys.ec.blob), "ecdsa-sha2-nistp256");
  const l = spawnSync("ssh-keygen", ["-l", "-E", "sha256", "-f", join(dir, "ed.pub")], { encoding: "utf8" });
  assert.equal(l.stdout.split(" ")[1], fingerprint(keys.ed.blob));
  assert.match(formatKnownHostLine("h", 22, keys.ed.blob), /^h ssh-ed25519 AAAA/);
  assert.match(formatKnownHostLine("h", 2222, keys.ed.blob), /^\[h\]:2222 ssh-ed25519 /);
});
