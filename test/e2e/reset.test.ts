// reset on the docker driver, for real: one node made with `up --no-kubernetes` is the "fresh
// node"; after `up` and `reset` its files are the fresh node's again, except what the prepare
// phase installs and kubeadm reset keeps too (binaries, containerd and its configuration).
// Along the way: a host whose marker names another cluster is refused and left as it was; a
// symlink planted in /etc/kubernetes is unlinked and its target kept; mounts below
// /var/lib/kubelet are released first and what they showed stays; a mount reset cannot release
// (below /var/lib/etcd) keeps that directory, fails the run naming it, and every other step still
// runs; a second reset reports 0 changed.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { ensureNodeImage } from "../../provisioner/drivers/docker/nodeimage.js";
import { dockerCleanup, kubeprov, makeCliEnv } from "../helpers/kubeprov-cli.js";
import { onNode, summaryOf } from "../helpers/cluster-e2e.js";

const NAME = `kpt-rs${process.pid % 100000}`;
const NODE = `${NAME}-control-plane`;
const env = makeCliEnv("kpt-reset-");

// The trees reset is answerable for, on the node's root file system and /run (-xdev: not /proc,
// /sys, the containerd volume or the bundle mount). /var/log, /tmp and the journal are not listed.
const LIST = "find /etc /var/lib /opt /usr/local /run /root -xdev 2>/dev/null | sort";

// What a prepared node legitimately keeps after reset (kubeadm reset keeps packages and the
// runtime too), and runtime noise of the node's own services. Each is a prefix of a path.
const KEPT = [
  "/usr/local/bin/", // the Kubernetes binaries the prepare phase installed
  "/etc/crictl.yaml", // prepare: crictl's configuration
  "/etc/cni", // containerd's CNI configuration directory (containerd makes it, mode 0700)
  "/opt/containerd", // containerd's own directories, made when prepare started it
  "/etc/systemd/system/multi-user.target.wants/containerd.service", // prepare enabled containerd
  "/run/containerd", // the running runtime's sockets and state (checked below: no pod left)
  "/run/systemd/", // systemd's run-time state (sessions of the SSH logins)
  "/run/user", // logind's run-time directory of those logins
  "/run/motd.dynamic", // written at each SSH login
  "/run/xtables.lock", // iptables' own lock file (reset's iptables-save/restore use it too)
];

// Kept as they are, nothing below them: the binaries' stamp (their sha256 with size, inode and
// ctime, so a re-run need not hash them again) stays with the binaries it describes.
const KEPT_EXACTLY = new Set(["/var/lib/kubeprov", "/var/lib/kubeprov/binaries.sha256"]);

const kept = (p: string) => KEPT_EXACTLY.has(p) || KEPT.some((k) => p === k || p.startsWith(k.endsWith("/") ? k : `${k}/`) || (k.endsWith("/") && p === k.slice(0, -1)));

async function files(): Promise<string[]> {
  const r = await onNode(NODE, LIST);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout.split("\n").filter(Boolean);
}

async function reset(extra: string[] = []) {
  return kubeprov(env, ["reset", "--name", NAME, "--force", "-o", "json", ...extra]);
}

describe("reset: back to a fresh node, safely", { timeout: 15 * 60_000 }, () => {
  let fresh: string[] = [];
  before(async () => {
    await ensureNodeImage({ log: (m) => console.log(`# ${m}`) });
  });
  after(async () => {
    await dockerCleanup(NAME);
    env.cleanup();
  });

  test("up --no-kubernetes (the fresh node), then up", async () => {
    const m = await kubeprov(env, ["up", "--name", NAME, "--nodes", "1", "--no-kubernetes", "--no-kubeconfig"]);
    assert.equal(m.code, 0, m.stderr + m.stdout);
    fresh = await files();
    assert.ok(fresh.includes("/etc/passwd") && !fresh.some((p) => p.startsWith("/etc/kubernetes")), "the fresh node has no Kubernetes files");
    const u = await kubeprov(env, ["up", "--name", NAME, "--nodes", "1", "--no-kubeconfig"]);
    assert.equal(u.code, 0, u.stderr + u.stdout);
    console.log(`# up: ${u.ms} ms`);
  });

  test("a host whose marker names another cluster is refused, exit 1, nothing changed", async () => {
    const before = await onNode(NODE, "find /etc/kubernetes /var/lib/etcd/member -maxdepth 1 | sort; systemctl is-active kubelet");
    assert.equal(before.code, 0, before.stderr);
    await onNode(NODE, "printf 'other-cluster\\n' > /etc/kubernetes/kubeprov-cluster");
    const r = await reset();
    assert.equal(r.code, 1, r.stderr + r.stdout);
    assert.match(r.stderr, new RegExp(`${NODE}.*/etc/kubernetes/kubeprov-cluster says this host belongs to cluster other-cluster, not ${NAME}`));
    assert.match(r.stderr, /--ignore-cluster-marker/);
    const after = await onNode(NODE, "find /etc/kubernetes /var/lib/etcd/member -maxdepth 1 | sort; systemctl is-active kubelet");
    assert.equal(after.stdout, before.stdout, "reset changed a host it refused");
    assert.equal((await onNode(NODE, "cat /etc/kubernetes/kubeprov-cluster")).stdout.trim(), "other-cluster");
    await onNode(NODE, `printf '%s\\n' ${NAME} > /etc/kubernetes/kubeprov-cluster`);
  });

  test("reset: symlinks unlinked not followed, kubelet mounts released first, a stuck mount reported, the rest done", async () => {
    const plant = await onNode(
      NODE,
      [
        "set -e",
        // The kubelet's housekeeping removes empty volume directories of pods it does not know
        // (every 2 s), which would race the planting below; reset stops it first anyway.
        "systemctl stop kubelet",
        "mkdir -p /root/keep-bind /root/keep-etcd",
        "echo keep-me > /root/keep-me; echo bound > /root/keep-bind/file; echo etcd > /root/keep-etcd/file",
        // A symlink inside the tree, and a kubeconfig-named one: both point out of /etc/kubernetes.
        "ln -s /root/keep-me /etc/kubernetes/pki/evil",
        "ln -s /root/keep-me /etc/kubernetes/evil.conf",
        "ln -s /root /etc/kubernetes/pki/evil-dir",
        // A pod volume that is a bind mount of a directory outside, and a tmpfs one.
        "d=/var/lib/kubelet/pods/kpt-test/volumes; mkdir -p $d/bind $d/tmp",
        "mount --bind /root/keep-bind $d/bind",
        "mount -t tmpfs kpt-test $d/tmp; echo x > $d/tmp/f",
        // A mount below /var/lib/etcd, which reset does not unmount: it must keep that directory.
        "mkdir -p /var/lib/etcd/kpt-stuck; mount --bind /root/keep-etcd /var/lib/etcd/kpt-stuck",
      ].join("\n"),
    );
    assert.equal(plant.code, 0, plant.stderr);

    const r = await reset();
    console.log(`# reset with a stuck mount: ${r.ms} ms`);
    assert.equal(r.code, 1, r.stderr + r.stdout);
    assert.match(r.stderr, /reset failed in 1 step/);
    assert.match(r.stderr, /remove \/var\/lib\/etcd: kept: still mounted below it: \/var\/lib\/etcd\/kpt-stuck/);
    assert.equal(summaryOf(r.stdout)?.failed, 1);

    const look = await onNode(
      NODE,
      [
        "cat /root/keep-me /root/keep-bind/file /root/keep-etcd/file",
        "grep -c ' /var/lib/kubelet/' /proc/self/mountinfo",
        "test -e /var/lib/kubelet && echo kubelet-dir || echo no-kubelet-dir",
        "test -e /etc/kubernetes/pki && echo pki || echo no-pki",
        "ls /etc/kubernetes",
        "test -d /var/lib/etcd/member && echo etcd-member",
        "systemctl is-active kubelet || true",
      ].join("; "),
    );
    const out = look.stdout.split("\n");
    assert.deepEqual(out.slice(0, 3), ["keep-me", "bound", "etcd"], "a target outside the allow-list was touched");
    assert.equal(out[3], "0", "mounts left below /var/lib/kubelet");
    assert.equal(out[4], "no-kubelet-dir");
    assert.equal(out[5], "no-pki");
    // Only the marker stays in /etc/kubernetes (a half-reset host still belongs to its cluster).
    assert.equal(out[6], "kubeprov-cluster");
    // Nothing below the stuck mount's directory was removed.
    assert.equal(out[7], "etcd-member");
    assert.equal(out[8], "inactive");
  });

  test("once the mount is gone, reset finishes: the node's files are the fresh node's again; a second reset changes nothing", async () => {
    assert.equal((await onNode(NODE, "umount /var/lib/etcd/kpt-stuck")).code, 0);
    const r = await reset();
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(summaryOf(r.stdout)?.changed, 1);

    const now = await files();
    const ours = new Set(["/root/keep-me", "/root/keep-bind", "/root/keep-bind/file", "/root/keep-etcd", "/root/keep-etcd/file"]);
    const freshSet = new Set(fresh);
    const nowSet = new Set(now);
    const added = now.filter((p) => !freshSet.has(p) && !ours.has(p) && !kept(p));
    const removed = fresh.filter((p) => !nowSet.has(p) && !kept(p));
    assert.deepEqual(added, [], "files reset left behind");
    assert.deepEqual(removed, [], "files of the fresh node that reset removed");
    // No pod is left in the runtime (its per-container state directories are gone too).
    assert.deepEqual(now.filter((p) => /^\/run\/containerd\/io\.containerd\.grpc\.v1\.cri\/(containers|sandboxes)\/./.test(p)), []);
    assert.equal((await onNode(NODE, "ctr -n k8s.io containers ls -q | wc -l")).stdout.trim(), "0");

    const again = await reset();
    assert.equal(again.code, 0, again.stderr + again.stdout);
    assert.equal(summaryOf(again.stdout)?.changed, 0);
  });

  test("--ignore-cluster-marker resets a host another cluster's marker names (and removes the marker)", async () => {
    await onNode(NODE, "mkdir -p /etc/kubernetes && printf 'other-cluster\\n' > /etc/kubernetes/kubeprov-cluster");
    assert.equal((await reset()).code, 1);
    const r = await reset(["--ignore-cluster-marker"]);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.equal(summaryOf(r.stdout)?.changed, 1);
    assert.equal((await onNode(NODE, "test -e /etc/kubernetes && echo left || echo gone")).stdout.trim(), "gone");
  });
});
