// How `image load` names what it loads: the tags `docker save` writes, containerd's references for
// them, and the manifest of a real archive (made with tar here, in docker save's layout).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execa } from "execa";
import { containerdRef, imageArchive, savedTags } from "../../provisioner/images/load.js";
import { UsageError } from "../../provisioner/errors.js";

test("savedTags: what docker save writes as RepoTags for each way of naming an image", () => {
  assert.deepEqual(savedTags("kpt-echo:1"), ["kpt-echo:1"]);
  assert.deepEqual(savedTags("kpt-echo"), ["kpt-echo:latest"]);
  assert.deepEqual(savedTags("localhost:5000/team/app"), ["localhost:5000/team/app:latest"]);
  assert.deepEqual(savedTags("localhost:5000/team/app:2"), ["localhost:5000/team/app:2"]);
  assert.deepEqual(savedTags("sha256:" + "a".repeat(64)), []);
  assert.deepEqual(savedTags("0123456789ab"), []);
});

test("containerdRef: Docker's short names become containerd's full references", () => {
  assert.equal(containerdRef("kpt-echo:1"), "docker.io/library/kpt-echo:1");
  assert.equal(containerdRef("team/app"), "docker.io/team/app:latest");
  assert.equal(containerdRef("localhost:5000/app:3"), "localhost:5000/app:3");
  assert.equal(containerdRef("registry.example/app"), "registry.example/app:latest");
});

test("imageArchive of a FILE.tar: its manifest's id and tags, the file itself as the archive; not an archive is a usage error", async () => {
  const dir = mkdtempSync(join(tmpdir(), "kpt-image-load-"));
  try {
    const hex = "b".repeat(64);
    writeFileSync(join(dir, "manifest.json"), JSON.stringify([{ Config: `${hex}.json`, RepoTags: ["kpt-echo:1"], Layers: [] }]));
    writeFileSync(join(dir, `${hex}.json`), "{}");
    const tar = join(dir, "image.tar");
    await execa("tar", ["-cf", tar, "-C", dir, "manifest.json", `${hex}.json`]);
    const a = await imageArchive(tar);
    assert.equal(a.id, `sha256:${hex}`);
    assert.deepEqual(a.tags, ["kpt-echo:1"]);
    assert.equal(await a.path(), tar);
    writeFileSync(join(dir, "not.tar"), "plain text");
    await assert.rejects(imageArchive(join(dir, "not.tar")), (e: unknown) => e instanceof UsageError && /not an image archive/.test((e as Error).message));
    await assert.rejects(imageArchive(join(dir, "missing.tar")), (e: unknown) => e instanceof UsageError && /no such file/.test((e as Error).message));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
