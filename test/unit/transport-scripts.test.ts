// The write/read scripts both transports run, exercised with the local /bin/sh; bastion parsing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseReadFiles, readFilesScript, readScript, writeFilesInput, writeFilesScript, writeScript, READ_MISSING_CODE, sudoWrap } from "../../provisioner/transport/scripts.js";
import { randomBytes } from "node:crypto";
import { parseBastion } from "../../provisioner/transport/ssh.js";
import { hostSshSettings } from "../../provisioner/transport/pool.js";
import { clusterSchema } from "../../provisioner/spec/schema.js";
import { ConfigError } from "../../provisioner/errors.js";
import { renderTemplate } from "../../provisioner/render.js";
import { createHash } from "node:crypto";
import { chmodSync, symlinkSync } from "node:fs";

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), "kpt-scripts-"));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const sh = (script: string, input: string | Buffer) => spawnSync("/bin/sh", ["-c", script], { input, encoding: "utf8" });

test("writeScript: exact bytes → file with the mode; fewer bytes (a cut connection) → old file kept, temp removed", () => {
  const p = join(dir, "a", "b", "f.txt");
  const ok = sh(writeScript(p, 6, 0o640), "hello\n");
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(readFileSync(p, "utf8"), "hello\n");
  assert.equal(statSync(p).mode & 0o7777, 0o640);
  const cut = sh(writeScript(p, 1000, 0o600), "only part");
  assert.equal(cut.status, 75);
  assert.match(cut.stderr, /short write: received 9 of 1000 bytes/);
  assert.equal(readFileSync(p, "utf8"), "hello\n");
  assert.equal(statSync(p).mode & 0o7777, 0o640);
  assert.deepEqual(readdirSync(join(dir, "a", "b")), ["f.txt"]);
});

test("writeScript: names with spaces and quotes; owner validated; relative paths refused", () => {
  const p = join(dir, "it's a file");
  assert.equal(sh(writeScript(p, 2, 0o600, "root:root"), "x\n").status, 0);
  assert.equal(readFileSync(p, "utf8"), "x\n");
  assert.throws(() => writeScript(p, 1, 0o600, "root; rm -rf /"), /invalid owner/);
  assert.throws(() => writeScript("rel/path", 1, 0o600), /absolute path/);
});

test("readScript: content, or the 'missing' exit code", () => {
  const p = join(dir, "r.txt");
  writeFileSync(p, "data");
  assert.equal(sh(readScript(p), "").stdout, "data");
  assert.equal(sh(readScript(join(dir, "nope")), "").status, READ_MISSING_CODE);
  assert.equal(sudoWrap("echo 'a b'"), `sudo -n sh -c 'echo '\\''a b'\\'''`);
});

test("parseBastion and per-host SSH settings", () => {
  assert.deepEqual(parseBastion("ops@jump.example:2222"), { address: "jump.example", port: 2222, user: "ops" });
  assert.deepEqual(parseBastion("jump.example"), { address: "jump.example", port: 22, user: undefined });
  assert.deepEqual(parseBastion("[fd00::1]:22"), { address: "fd00::1", port: 22, user: undefined });
  assert.throws(() => parseBastion("@h"), ConfigError);
  assert.throws(() => parseBastion("h:99999"), ConfigError);
  const c = clusterSchema.parse({
    apiVersion: "kubeprov/v1alpha1",
    kind: "Cluster",
    metadata: { name: "x" },
    spec: {
      ssh: { user: "admin", port: 2200, identityFile: "~/.ssh/a", bastion: "jump" },
      hosts: [
        { name: "a", address: "10.213.0.2", roles: ["control-plane"] },
        { name: "b", address: "10.213.0.3", roles: ["worker"], ssh: { user: "root", port: 22, identityFile: "/k", bastion: "u@j2:2022" } },
      ],
    },
  });
  const a = hostSshSettings(c, c.spec.hosts[0]);
  assert.equal(a.user, "admin");
  assert.equal(a.port, 2200);
  assert.equal(a.identityFile, "~/.ssh/a");
  assert.deepEqual(a.bastion, { address: "jump", port: 22, user: undefined });
  const b = hostSshSettings(c, c.spec.hosts[1]);
  assert.deepEqual([b.user, b.port, b.identityFile, b.bastion], ["root", 22, "/k", { address: "j2", port: 2022, user: "u" }]);
});

test("binary stamp: a recorded binary is not read again; a rewrite, a chmod or a missing stamp makes it hashed", () => {
  const bins = ["kubelet", "kubectl"].map((n) => join(dir, n));
  writeFileSync(bins[0]!, "kubelet bytes", { mode: 0o755 });
  writeFileSync(bins[1]!, "kubectl bytes", { mode: 0o755 });
  const stamp = join(dir, "stamp", "binaries.sha256");
  const values = { paths: bins.map((p) => `'${p}'`).join(" "), stamp: `'${stamp}'`, copies: "", source: "/nonexistent", binDir: `'${dir}'` };
  const sum = (t: string) => createHash("sha256").update(t).digest("hex");
  const hashes = () => sh(renderTemplate("prepare/binary-hashes.sh", values), "").stdout.trim().split("\n");
  assert.deepEqual(hashes(), [`${sum("kubelet bytes")} 755`, `${sum("kubectl bytes")} 755`, "stamp stale"]);
  const rec = sh(renderTemplate("prepare/binary-stamp.sh", values), "");
  assert.equal(rec.status, 0, rec.stderr);
  assert.deepEqual(rec.stdout.trim().split("\n"), [`${sum("kubelet bytes")} 755`, `${sum("kubectl bytes")} 755`]);
  assert.equal(statSync(stamp).mode & 0o777, 0o644);
  assert.deepEqual(hashes(), [`${sum("kubelet bytes")} 755`, `${sum("kubectl bytes")} 755`, "stamp fresh"]);
  // The stamp is believed only while size, ctime and inode are unchanged: proven by a stamp
  // whose digest is wrong for a file that was not touched (it is believed) ...
  const text = readFileSync(stamp, "utf8");
  writeFileSync(stamp, text.replace(sum("kubectl bytes"), "f".repeat(64)));
  assert.equal(hashes()[1], `${"f".repeat(64)} 755`);
  // ... and no longer once the file is rewritten (same size) or its mode changed.
  writeFileSync(bins[1]!, "kubectl BYTES");
  assert.deepEqual(hashes().slice(1), [`${sum("kubectl BYTES")} 755`, "stamp stale"]);
  chmodSync(bins[0]!, 0o700);
  assert.equal(hashes()[0], `${sum("kubelet bytes")} 700`);
  rmSync(bins[0]!);
  assert.deepEqual(hashes(), ["- -", `${sum("kubectl BYTES")} 755`, "stamp stale"]);
});

test("binary stamp with copies: a source whose copy has the artifact's sha256 is installed, any other is left for upload", () => {
  const src = join(dir, "bundle-bin");
  const bin = join(dir, "usr-local-bin");
  mkdirSync(src, { recursive: true });
  mkdirSync(bin, { recursive: true });
  const sum = (t: string) => createHash("sha256").update(t).digest("hex");
  writeFileSync(join(src, "kubelet"), "new kubelet", { mode: 0o644 });
  writeFileSync(join(src, "kubectl"), "corrupt kubectl", { mode: 0o755 });
  writeFileSync(join(bin, "kubectl"), "old kubectl", { mode: 0o755 });
  const stamp = join(dir, "stamp2", "binaries.sha256");
  const names = ["kubelet", "kubectl", "crictl"];
  const r = sh(
    renderTemplate("prepare/binary-stamp.sh", {
      paths: names.map((n) => `'${join(bin, n)}'`).join(" "),
      stamp: `'${stamp}'`,
      // kubectl's source does not have the artifact's bytes; crictl has no source on this host.
      copies: [`kubelet=${sum("new kubelet")}`, `kubectl=${sum("good kubectl")}`, `crictl=${sum("crictl")}`].join(" "),
      source: `'${src}'`,
      binDir: `'${bin}'`,
    }),
    "",
  );
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(r.stdout.trim().split("\n"), [`${sum("new kubelet")} 755`, `${sum("old kubectl")} 755`, "- -"]);
  assert.equal(readFileSync(join(bin, "kubelet"), "utf8"), "new kubelet");
  assert.equal(statSync(join(bin, "kubelet")).mode & 0o777, 0o755);
  assert.equal(readFileSync(join(bin, "kubectl"), "utf8"), "old kubectl", "a copy with the wrong sum never replaces the binary");
  assert.deepEqual(readdirSync(bin).sort(), ["kubectl", "kubelet"], "no temporary file left");
  const recorded = readFileSync(stamp, "utf8").trim().split("\n");
  assert.equal(recorded.length, 2);
  assert.match(recorded[0]!, new RegExp(`^${sum("new kubelet")} \\d+ [\\d.]+ \\d+ 755 ${join(bin, "kubelet")}$`));
});

test("writeFilesScript: several files in one command, each with its mode; a short one → none moved into place, no temp left", () => {
  const d = join(dir, "many");
  const files = [
    { path: join(d, "ca.key"), data: randomBytes(1675) },
    { path: join(d, "sub dir", "it's.crt"), data: Buffer.from("-----BEGIN X-----\nline\n-----END X-----\n") },
    { path: join(d, "empty"), data: Buffer.alloc(0) },
  ];
  const modes = [0o600, 0o644, 0o640];
  const script = writeFilesScript(files.map((f, i) => ({ path: f.path, size: f.data.length, mode: modes[i]! })));
  const ok = sh(script, writeFilesInput(files.map((f) => f.data)));
  assert.equal(ok.status, 0, ok.stderr);
  files.forEach((f, i) => {
    assert.deepEqual(readFileSync(f.path), f.data, f.path);
    assert.equal(statSync(f.path).mode & 0o7777, modes[i], f.path);
  });
  // Fresh contents, but the last line is cut: nothing is replaced.
  const fresh = files.map(() => randomBytes(100));
  const input = writeFilesInput(fresh);
  const cut = sh(writeFilesScript(files.map((f) => ({ path: f.path, size: 100, mode: 0o600 }))), input.slice(0, input.length - 30));
  assert.notEqual(cut.status, 0);
  files.forEach((f) => assert.deepEqual(readFileSync(f.path), f.data, `${f.path} untouched`));
  assert.deepEqual(readdirSync(d).sort(), ["ca.key", "empty", "sub dir"]);
  assert.deepEqual(readdirSync(join(d, "sub dir")), ["it's.crt"]);
});

test("readFilesScript: contents byte for byte, missing, directory; one line per path", () => {
  const d = join(dir, "readmany");
  mkdirSync(join(d, "adir"), { recursive: true });
  const bin = randomBytes(3000);
  writeFileSync(join(d, "bin"), bin);
  writeFileSync(join(d, "empty"), "");
  const paths = [join(d, "bin"), join(d, "missing"), join(d, "adir"), join(d, "empty")];
  const r = sh(readFilesScript(paths), "");
  assert.equal(r.status, 0, r.stderr);
  const got = parseReadFiles(paths, r.stdout);
  assert.deepEqual(got.get(paths[0]!), bin);
  assert.equal(got.get(paths[1]!), undefined);
  assert.match(String(got.get(paths[2]!)), /is a directory/);
  assert.deepEqual(got.get(paths[3]!), Buffer.alloc(0));
  assert.throws(() => parseReadFiles(paths, "M\n"), /does not fit them/);
  // A file that grew between its size and its contents being read is refused, not cut.
  const grown = r.stdout.replace(/^3000$/m, "2999");
  assert.throws(() => parseReadFiles(paths, grown), /sizes and contents do not match/);
  // Nothing readable: no stat, no cat.
  const none = sh(readFilesScript([join(d, "missing"), join(d, "adir")]), "");
  assert.equal(none.stdout, "M\nD\n");
  // A symlink is read through, with the size of what it points to.
  symlinkSync(join(d, "bin"), join(d, "link"));
  const viaLink = parseReadFiles([join(d, "link")], sh(readFilesScript([join(d, "link")]), "").stdout);
  assert.deepEqual(viaLink.get(join(d, "link")), bin);
});
