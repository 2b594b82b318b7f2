// The reset task's pure parts (allow-list, rendering, parsing) and its removal functions
// (templates/reset/remove.sh) run with the local /bin/sh over a scratch tree: symlinks are
// unlinked, never followed; a parent reached through a symlink is refused; one failure does not
// stop the other removals; a directory with a mount below it is kept (where this machine lets a
// test mount a tmpfs).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  allowListWord,
  leftoversScript,
  parseLeftovers,
  parseResetOutput,
  removeFunctions,
  RESET_ALLOW_LIST,
  RESET_EMPTY_DIRS,
  RESET_KUBEPROV_FILES,
  RESET_UNMOUNT_BELOW,
  resetScript,
} from "../../provisioner/tasks/reset.js";
import { BIN_DIR, CLUSTER_MARKER_FILE, CONTAINERD_CONFIG, CRICTL_CONFIG, ETCD_DATA_DIR, KUBELET_CONFIG, MANIFESTS_DIR, PKI_DIR } from "../../provisioner/constants.js";
import { KUBELET_CGROUP_SCRIPT, KUBELET_DROPIN, KUBELET_KUBECONFIG, KUBELET_UNIT, BOOTSTRAP_KUBELET_KUBECONFIG } from "../../provisioner/tasks/kubelet.js";
import { CNI_CONFIG_FILE } from "../../provisioner/bootstrap/manifests.js";
import { ADMIN_CONF, SUPER_ADMIN_CONF } from "../../provisioner/bootstrap/api.js";
import { placeholders } from "../../provisioner/render.js";

let dir: string;
before(() => {
  // realpath: the scratch tree's own path must not pass through a symlink (/tmp could be one).
  dir = realpathSync(mkdtempSync(join(tmpdir(), "kpt-reset-")));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const sh = (script: string) => spawnSync("/bin/sh", ["-c", script], { encoding: "utf8" });

/** Whether an allow-list entry (possibly a pattern) covers a path. */
function covers(entry: string, path: string): boolean {
  if (entry.includes("*")) {
    const re = new RegExp(`^${entry.replace(/[.]/g, "\\.").replace(/\*/g, "[^/]*")}$`);
    return re.test(path);
  }
  return path === entry || path.startsWith(`${entry}/`);
}

test("allowListWord: absolute normalized paths only, a pattern only in the last component", () => {
  assert.equal(allowListWord("/etc/kubernetes/pki"), "/etc/kubernetes/pki");
  assert.equal(allowListWord("/etc/kubernetes/*.conf"), "/etc/kubernetes/*.conf");
  for (const bad of ["etc/kubernetes", "/etc/kubernetes/", "/etc//kubernetes", "/etc/../root", "/etc/kubernetes/..", "/etc/*/pki", "/etc/kubernetes/*", "/", "/etc/kube rnetes", "/etc/$(x)", "/etc/a;b"]) {
    assert.throws(() => allowListWord(bad), /not an absolute, normalized path/, bad);
  }
});

test("the allow-list: kubeadm's paths and every file init/join write; nothing prepare keeps; the marker last", () => {
  for (const p of [...RESET_ALLOW_LIST, ...RESET_KUBEPROV_FILES, ...RESET_EMPTY_DIRS, ...RESET_UNMOUNT_BELOW]) allowListWord(p);
  const all = [...RESET_ALLOW_LIST, ...RESET_KUBEPROV_FILES];
  const written = [
    `${PKI_DIR}/ca.key`,
    `${PKI_DIR}/etcd/server.crt`,
    `${MANIFESTS_DIR}/kube-apiserver.yaml`,
    ADMIN_CONF,
    SUPER_ADMIN_CONF,
    KUBELET_KUBECONFIG,
    BOOTSTRAP_KUBELET_KUBECONFIG,
    KUBELET_CONFIG,
    `${ETCD_DATA_DIR}/member/wal`,
    KUBELET_DROPIN,
    KUBELET_UNIT,
    KUBELET_CGROUP_SCRIPT,
    CNI_CONFIG_FILE,
    "/etc/systemd/system/kube-apiserver.service",
    CLUSTER_MARKER_FILE,
  ];
  for (const p of written) assert.ok(all.some((e) => covers(e, p)), `${p} is not on the allow-list`);
  for (const p of [`${BIN_DIR}/kubelet`, CONTAINERD_CONFIG, CRICTL_CONFIG, "/etc/kubernetes", "/var/lib/containerd", "/etc/cni/net.d", "/root/x", "/etc/passwd"]) {
    assert.ok(!all.some((e) => covers(e, p)), `${p} must not be removed by reset`);
  }
  assert.equal(RESET_ALLOW_LIST[RESET_ALLOW_LIST.length - 1], CLUSTER_MARKER_FILE);
});

test("the rendered scripts: no placeholder left, valid sh, the marker removed last and only after success", () => {
  const s = resetScript({ clusterName: "demo", cgroupRoot: "/kubeprov/demo/n1" });
  const l = leftoversScript();
  for (const text of [s, l]) {
    assert.deepEqual(placeholders(text), []);
    const r = spawnSync("/bin/sh", ["-n"], { input: text, encoding: "utf8" });
    assert.equal(r.status, 0, r.stderr);
  }
  assert.doesNotMatch(s, /rm -[a-z]*r[a-z]*f?[^\n]*\/["']?\s*$/m, "no recursive rm of a path ending in /");
  assert.match(s, /if \[ "\$failures" -eq 0 \]; then remove_path "\$marker"; fi/);
  assert.match(s, /\[ "\$owner" != demo \]/);
  assert.match(s, /^root=\/kubeprov\/demo\/n1$/m);
  // The marker is not in the main loop: it goes last.
  const loop = s.split("\n").find((x) => x.startsWith("for p in ") && x.includes("remove_path"))!;
  assert.ok(!loop.includes(CLUSTER_MARKER_FILE));
  assert.throws(() => resetScript({ clusterName: "demo", cgroupRoot: "/x; rm -rf /" }), /not a plain absolute path/);
});

test("parsing: leftovers with the marker's cluster; the reset script's failed steps and refusal", () => {
  assert.deepEqual(parseLeftovers("marker other\n/var/lib/etcd\nkubelet running\n"), { marker: "other", items: ["/var/lib/etcd", "kubelet running"] });
  assert.deepEqual(parseLeftovers(""), { marker: "", items: [] });
  assert.deepEqual(parseResetOutput("failed remove /var/lib/etcd: kept: still mounted below it: /var/lib/etcd/x \nfailed iptables: chains\n"), {
    failures: ["remove /var/lib/etcd: kept: still mounted below it: /var/lib/etcd/x", "iptables: chains"],
  });
  assert.deepEqual(parseResetOutput("refused other\n"), { refusedBy: "other", failures: [] });
});

test("remove_path on a real tree: symlinks unlinked and their targets kept, a symlinked parent refused, the other paths still removed", () => {
  const outside = join(dir, "root");
  mkdirSync(join(outside, "keep-dir"), { recursive: true });
  writeFileSync(join(outside, "keep-me"), "keep\n");
  writeFileSync(join(outside, "keep-dir", "file"), "inside\n");
  const k = join(dir, "etc", "kubernetes");
  mkdirSync(join(k, "pki", "etcd"), { recursive: true });
  mkdirSync(join(k, "manifests"), { recursive: true });
  writeFileSync(join(k, "pki", "ca.key"), "key\n");
  writeFileSync(join(k, "admin.conf"), "conf\n");
  symlinkSync(join(outside, "keep-me"), join(k, "pki", "evil")); // a link inside a removed tree
  symlinkSync(outside, join(k, "pki", "etcd", "evil-dir"));
  symlinkSync(join(outside, "keep-me"), join(k, "evil.conf")); // a pattern match that is a link
  symlinkSync(join(outside, "keep-dir"), join(k, "manifests-link")); // an allow-listed path that is itself a link
  // A parent reached through a symlink: reset must not remove keep-dir/file through it.
  symlinkSync(outside, join(dir, "via-link"));
  const script = [
    removeFunctions(),
    `for p in ${[join(k, "pki"), join(k, "via"), join(dir, "via-link", "keep-dir"), `${k}/*.conf`, join(k, "manifests-link"), join(k, "manifests"), join(k, "absent")].map((p) => (p.includes("*") ? p : `'${p}'`)).join(" ")}; do remove_path "$p"; done`,
    `remove_dir_if_empty '${k}'`,
    'echo "failures=$failures"',
  ].join("\n");
  const r = sh(script);
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stdout.trim().split("\n");
  assert.deepEqual(lines, [`failed remove ${join(dir, "via-link", "keep-dir")}: kept: ${join(dir, "via-link")} leads to ${outside} through a symlink, which reset does not follow`, "failures=1"]);
  // Everything outside is intact, every allow-listed path is gone, /etc/kubernetes (now empty) too.
  assert.equal(readFileSync(join(outside, "keep-me"), "utf8"), "keep\n");
  assert.equal(readFileSync(join(outside, "keep-dir", "file"), "utf8"), "inside\n");
  assert.ok(lstatSync(join(dir, "via-link")).isSymbolicLink());
  assert.equal(existsSync(k), false, `${k} should be gone`);
});

test("remove_path keeps a directory with a mount below it and empties one that is a mount point itself", (t) => {
  const base = join(dir, "mnt");
  mkdirSync(join(base, "etcd", "stuck"), { recursive: true });
  mkdirSync(join(base, "disk"), { recursive: true });
  const m = sh(`mount -t tmpfs kpt-unit '${join(base, "etcd", "stuck")}' && mount -t tmpfs kpt-unit '${join(base, "disk")}'`);
  if (m.status !== 0) {
    sh(`umount '${join(base, "etcd", "stuck")}' 2>/dev/null`);
    t.skip(`this machine does not let the test mount a tmpfs (${m.stderr.trim()})`);
    return;
  }
  try {
    writeFileSync(join(base, "etcd", "stuck", "data"), "x");
    writeFileSync(join(base, "etcd", "member"), "m");
    writeFileSync(join(base, "disk", "data"), "d");
    const r = sh([removeFunctions(), `remove_path '${join(base, "etcd")}'`, `remove_path '${join(base, "disk")}'`, 'echo "failures=$failures"'].join("\n"));
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n"), [`failed remove ${join(base, "etcd")}: kept: still mounted below it: ${join(base, "etcd", "stuck")} `, "failures=1"]);
    assert.ok(existsSync(join(base, "etcd", "member")) && existsSync(join(base, "etcd", "stuck", "data")));
    // The mount point stays (emptied): reset never unmounts a disk someone gave etcd.
    assert.ok(existsSync(join(base, "disk")) && !existsSync(join(base, "disk", "data")));
    // unmount_below releases what is below a directory, deepest first.
    const u = sh([removeFunctions(), `unmount_below '${join(base, "etcd")}'`, 'echo "failures=$failures"'].join("\n"));
    assert.equal(u.stdout.trim(), "failures=0");
    assert.ok(!existsSync(join(base, "etcd", "stuck", "data")));
  } finally {
    sh(`umount '${join(base, "etcd", "stuck")}' 2>/dev/null; umount '${join(base, "disk")}' 2>/dev/null`);
  }
});
