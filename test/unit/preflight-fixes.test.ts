// What `preflight --fix` would run, planned from captured outputs (pure), and the commands prepare
// would run per OS family (only Debian runs here; the RHEL path is covered by these tests).
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseClusterText } from "../../provisioner/spec/load.js";
import type { Cluster } from "../../provisioner/spec/schema.js";
import { planFixes, sysctlFileContent, FSTAB_BACKUP, type FixInput } from "../../provisioner/preflight/fixes.js";
import type { Sections } from "../../provisioner/preflight/gather.js";
import { binariesFor, installCommands, parseRuntimeProbe, pickCniBinDir, renderContainerdConfig, renderCrictlConfig, runtimeProbeScript } from "../../provisioner/tasks/prepare.js";
import { gatherScript, parseSections, SECTION_PREFIX, TCP_LISTENING_SCRIPT, UNIX_LISTENING_SCRIPT } from "../../provisioner/preflight/gather.js";
import { parseTcpListeners } from "../../provisioner/preflight/checks.js";

function cluster(extra = ""): Cluster {
  return parseClusterText(
    `apiVersion: kubeprov/v1alpha1\nkind: Cluster\nmetadata: {name: kpt-fix}\nspec:\n${extra}  hosts:\n    - {name: cp1, address: 10.213.0.2, roles: [control-plane]}\n    - {name: w1, address: 10.213.0.3, roles: [worker]}\n`,
    "fix.yaml",
  );
}

const BINS = "hostnamectl /usr/bin/hostnamectl\nsystemctl /usr/bin/systemctl\nsysctl /usr/sbin/sysctl";

/** A node container that needs nothing but the sysctl file (values already 1, /proc/sys read-only). */
function container(): Sections {
  return {
    hostname: "cp1",
    getent: "10.213.0.2 cp1",
    swaps: "Filename Type Size Used Priority",
    fstab: "",
    firewalld: "inactive",
    ufw: "",
    selinux: "Disabled",
    "proc-modules": "(no /proc/modules)",
    "bridge-sysctl-dir": "yes",
    filesystems: "nodev overlay",
    sysctls: "net.ipv4.ip_forward 1 ro\nnet.bridge.bridge-nf-call-iptables 1 ro",
    "sysctl-file": "",
    binaries: BINS,
  };
}

function fx(s: Sections, over: Partial<FixInput> = {}): FixInput {
  return { host: "cp1", nodeIP: "10.213.0.2", roles: ["control-plane"], cluster: cluster(), sections: { ...container(), ...s }, ...over };
}

test("node container: --fix only writes the sysctl file; once written, nothing is left to do", () => {
  const steps = planFixes(fx({}));
  assert.equal(steps.length, 1);
  assert.deepEqual(steps[0]!.commands, []);
  assert.equal(steps[0]!.files[0]!.path, "/etc/sysctl.d/99-kubeprov.conf");
  assert.match(steps[0]!.files[0]!.content, /net.ipv4.ip_forward = 1\nnet.bridge.bridge-nf-call-iptables = 1/);
  assert.equal(steps[0]!.cannot, undefined);
  assert.deepEqual(planFixes(fx({ "sysctl-file": sysctlFileContent() })), []);
});

test("swap: swapoff, then comment fstab swap lines with one backup kept; the sed really does it", () => {
  const fstab = "UUID=1 / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n#/old none swap sw 0 0\nUUID=2 none swap defaults\n";
  const [s] = planFixes(fx({ swaps: "Filename Type\n/swapfile file 100 0 -2", fstab, "sysctl-file": sysctlFileContent() }));
  assert.equal(s!.id, "Swap");
  assert.equal(s!.commands[0], "swapoff -a");
  assert.match(s!.commands[1]!, new RegExp(`\\[ -e ${FSTAB_BACKUP} \\] \\|\\| cp -p /etc/fstab ${FSTAB_BACKUP}`));
  // run the sed on a copy of that fstab with the real sed
  const dir = mkdtempSync(join(tmpdir(), "kpt-fstab-"));
  try {
    const f = join(dir, "fstab");
    writeFileSync(f, fstab);
    execFileSync("/bin/sh", ["-c", s!.commands[2]!.replace("/etc/fstab", f)]);
    const out = execFileSync("cat", [f], { encoding: "utf8" });
    assert.equal(out, "UUID=1 / ext4 defaults 0 1\n# /swapfile none swap sw 0 0  # disabled by kubeprov\n#/old none swap sw 0 0\n# UUID=2 none swap defaults  # disabled by kubeprov\n");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("firewalld: open-ports adds the missing ports then reloads; disable stops it; nothing when open", () => {
  const s = { firewalld: "active", "firewalld-ports": "6443/tcp", "sysctl-file": sysctlFileContent() };
  const [open] = planFixes(fx(s));
  assert.deepEqual(open!.commands, ["firewall-cmd --permanent --add-port=2379-2380/tcp --add-port=10250/tcp --add-port=10257/tcp --add-port=10259/tcp", "firewall-cmd --reload"]);
  const [off] = planFixes(fx(s, { cluster: cluster("  firewall: disable\n") }));
  assert.deepEqual(off!.commands, ["systemctl disable --now firewalld"]);
  const [w] = planFixes(fx({ ...s, "firewalld-ports": "" }, { host: "w1", roles: ["worker"], sections: { ...container(), hostname: "w1", getent: "x w1", firewalld: "active", "sysctl-file": sysctlFileContent() } }));
  assert.deepEqual(w!.commands, ["firewall-cmd --permanent --add-port=10250/tcp --add-port=30000-32767/tcp", "firewall-cmd --reload"]);
  assert.deepEqual(planFixes(fx({ ...s, "firewalld-ports": "6443/tcp 2379-2380/tcp 10250/tcp 10257/tcp 10259/tcp" })), []);
});

test("ufw: allow each missing port (ranges with ':'), or disable", () => {
  const s = { ufw: "Status: active\n\n6443/tcp ALLOW Anywhere", "sysctl-file": sysctlFileContent() };
  const [u] = planFixes(fx(s));
  assert.deepEqual(u!.commands, ["ufw allow 2379:2380/tcp", "ufw allow 10250/tcp", "ufw allow 10257/tcp", "ufw allow 10259/tcp"]);
  assert.deepEqual(planFixes(fx(s, { cluster: cluster("  firewall: disable\n") }))[0]!.commands, ["ufw disable"]);
});

test("SELinux: setenforce 0 and the config file", () => {
  const [s] = planFixes(fx({ selinux: "Enforcing", "selinux-config": "SELINUX=enforcing", "sysctl-file": sysctlFileContent() }));
  assert.deepEqual(s!.commands, ["setenforce 0", "sed -i 's/^SELINUX=enforcing/SELINUX=permissive/' /etc/selinux/config"]);
});

test("modules: modprobe what is missing and persist real modules; built-in ones need nothing", () => {
  const base = { "proc-modules": "bridge", "bridge-sysctl-dir": "no", filesystems: "", "sysctl-file": sysctlFileContent() };
  const [m] = planFixes(fx(base));
  assert.deepEqual(m!.commands, ["modprobe br_netfilter", "modprobe overlay"]);
  assert.equal(m!.files[0]!.path, "/etc/modules-load.d/kubeprov.conf");
  assert.match(m!.files[0]!.content, /^br_netfilter\noverlay$/m);
  // loaded but not persisted: only the file
  const [p] = planFixes(fx({ ...base, "proc-modules": "br_netfilter\noverlay" }));
  assert.deepEqual(p!.commands, []);
  assert.equal(p!.files.length, 1);
  assert.deepEqual(planFixes(fx({ ...base, "proc-modules": "br_netfilter\noverlay", "modules-file": "# x\nbr_netfilter\noverlay" })), []);
  // built in: nothing at all
  assert.deepEqual(planFixes(fx({ ...base, "kernel-config": "CONFIG_BRIDGE_NETFILTER=y\nCONFIG_OVERLAY_FS=y" })), []);
});

test("sysctls: applied where /proc/sys is writable; reported as impossible where it is read-only", () => {
  const [w] = planFixes(fx({ sysctls: "net.ipv4.ip_forward 0 rw\nnet.bridge.bridge-nf-call-iptables 1 rw" }));
  assert.deepEqual(w!.commands, ["sysctl -p /etc/sysctl.d/99-kubeprov.conf"]);
  assert.equal(w!.cannot, undefined);
  const [r] = planFixes(fx({ sysctls: "net.ipv4.ip_forward 0 ro\nnet.bridge.bridge-nf-call-iptables 1 ro" }));
  assert.deepEqual(r!.commands, []);
  assert.match(r!.cannot!, /net.ipv4.ip_forward.*read-only/);
});

test("hostname: set it (hostnamectl, else hostname + /etc/hostname) and make it resolvable", () => {
  const steps = planFixes(fx({ hostname: "localhost", getent: "", "sysctl-file": sysctlFileContent() }));
  assert.deepEqual(steps.map((s) => s.id), ["Hostname", "Hostname"]);
  assert.match(steps[0]!.commands[0]!, /^hostnamectl set-hostname cp1 /);
  assert.equal(steps[1]!.commands[0], "getent hosts cp1 >/dev/null || printf '%s %s\\n' 10.213.0.2 cp1 >> /etc/hosts");
  const noSystemd = planFixes(fx({ hostname: "x", binaries: "sysctl /usr/sbin/sysctl", "sysctl-file": sysctlFileContent() }));
  assert.equal(noSystemd[0]!.commands[0], "hostname cp1 && printf '%s\\n' cp1 > /etc/hostname");
});

test("install commands: apt on Debian/Ubuntu, dnf/yum on the RHEL family (containerd.io), Fedora's own packages", () => {
  assert.deepEqual(installCommands("apt", "debian", "containerd"), [
    "DEBIAN_FRONTEND=noninteractive apt-get update -q",
    "DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends containerd runc",
  ]);
  assert.match(installCommands("apt", "ubuntu", "cni-plugins")[1]!, /containernetworking-plugins$/);
  assert.deepEqual(installCommands("dnf", "rocky", "containerd"), ["dnf -y install containerd.io"]);
  assert.deepEqual(installCommands("yum", "centos", "containerd"), ["yum -y install containerd.io"]);
  assert.deepEqual(installCommands("dnf", "fedora", "containerd"), ["dnf -y install containerd runc"]);
  assert.deepEqual(installCommands("dnf", "rhel", "cni-plugins"), ["dnf -y install containernetworking-plugins"]);
  assert.throws(() => installCommands("unknown", "alpine", "containerd"), /no known package manager/);
});

test("binaries per role and control-plane mode (kube-proxy is an image, kubeadm is not used)", () => {
  const c = cluster();
  assert.deepEqual(binariesFor(c, ["worker"]), ["kubelet", "kubectl"]);
  // Control planes get etcdctl (stacked etcd members are added, promoted and removed with it) and
  // etcdutl (snapshot restore), each when the artifact source has it.
  assert.deepEqual(binariesFor(c, ["control-plane"]), ["kubelet", "kubectl", "etcdctl", "etcdutl"]);
  assert.deepEqual(binariesFor(c, ["control-plane"], ["kubelet", "kubectl"]), ["kubelet", "kubectl"]);
  assert.deepEqual(binariesFor(c, ["control-plane"], ["kubelet", "kubectl", "etcdctl"]), ["kubelet", "kubectl", "etcdctl"]);
  const sd = cluster("  controlPlane: {mode: systemd}\n");
  assert.deepEqual(binariesFor(sd, ["control-plane"], ["crictl"]), ["kubelet", "kubectl", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "etcdctl", "crictl"]);
  assert.deepEqual(binariesFor(sd, ["worker"]), ["kubelet", "kubectl"]);
});

test("containerd config: containerd 1.6 itself parses it and reports our settings", () => {
  const dir = mkdtempSync(join(tmpdir(), "kpt-ctrd-"));
  try {
    for (const [driver, container] of [["cgroupfs", true], ["systemd", false]] as const) {
      const text = renderContainerdConfig(cluster(`  containerRuntime: {cgroupDriver: ${driver}}\n`), { container, cniBinDir: "/usr/lib/cni" });
      assert.match(text, /managed by kubeprov/);
      const f = join(dir, `${driver}.toml`);
      writeFileSync(f, text);
      const dump = execFileSync("containerd", ["--config", f, "config", "dump"], { encoding: "utf8" });
      assert.match(dump, new RegExp(`SystemdCgroup = ${driver === "systemd"}`));
      assert.match(dump, /sandbox_image = "registry.k8s.io\/pause:3.10.2"/);
      assert.match(dump, new RegExp(`restrict_oom_score_adj = ${container}`));
      assert.match(dump, /bin_dir = "\/usr\/lib\/cni"/);
      assert.match(dump, /conf_dir = "\/etc\/cni\/net.d"/);
      assert.doesNotMatch(dump, /disabled_plugins = \[[^\]]*cri/);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  assert.match(renderCrictlConfig("/run/containerd/containerd.sock"), /runtime-endpoint: unix:\/\/\/run\/containerd\/containerd.sock/);
});

test("runtime probe: parsed from its sections; CNI dir preference is Debian's first", () => {
  const out = [
    `${SECTION_PREFIX}sockets`, "/run/containerd/containerd.sock socket",
    `${SECTION_PREFIX}unix-listening`, "/run/containerd/containerd.sock",
    `${SECTION_PREFIX}listening-known`, "yes",
    `${SECTION_PREFIX}containerd`, "yes",
    `${SECTION_PREFIX}crictl`, "no",
    `${SECTION_PREFIX}cni`, "/opt/cni/bin\n/usr/lib/cni",
    `${SECTION_PREFIX}config`, "",
    `${SECTION_PREFIX}active`, "inactive",
    `${SECTION_PREFIX}enabled`, "disabled",
    `${SECTION_PREFIX}end`,
  ].join("\n");
  const p = parseRuntimeProbe(out);
  assert.equal(p.decision.kind, "use");
  assert.equal(p.cniBinDir, "/usr/lib/cni");
  assert.equal(p.active, false);
  assert.equal(p.configSha256, undefined);
  assert.equal(pickCniBinDir(["/opt/cni/bin"]), "/opt/cni/bin");
  assert.equal(pickCniBinDir([]), undefined);
});

test("the gather and probe scripts are valid shell that runs read-only here and yields every section", () => {
  const out = execFileSync("/bin/sh", ["-c", gatherScript()], { encoding: "utf8" });
  const s = parseSections(out);
  for (const k of ["time", "uid", "hostname", "nproc", "meminfo", "swaps", "binaries", "sockets", "tcp-listening", "sysctls", "cgroupfs", "marker"]) assert.ok(k in s, `section ${k}`);
  assert.ok(Math.abs(Number(s["time"]) - Date.now() / 1000) < 5);
  assert.match(s["binaries"]!, /^iptables \//m);
  const probe = execFileSync("/bin/sh", ["-c", runtimeProbeScript()], { encoding: "utf8" });
  assert.ok("cni" in parseSections(probe));
});

test("without ss, listeners come from /proc/net/tcp{,6} and /proc/net/unix", async () => {
  const { createServer } = await import("node:net");
  const dir = mkdtempSync(join(tmpdir(), "kpt-listen-"));
  const tcp = createServer().listen(0, "127.0.0.1");
  const sock = join(dir, "cri.sock");
  const unix = createServer().listen(sock);
  await Promise.all([new Promise((r) => tcp.once("listening", r)), new Promise((r) => unix.once("listening", r))]);
  try {
    const port = (tcp.address() as { port: number }).port;
    const noSs = (script: string) => execFileSync("/bin/sh", ["-c", script.replace(/command -v ss /g, "command -v kpt-no-such-ss ")], { encoding: "utf8" });
    const listeners = parseTcpListeners(noSs(TCP_LISTENING_SCRIPT));
    assert.ok(listeners.some((l) => l.port === port), `port ${port} not among ${listeners.map((l) => l.port).join(",")}`);
    assert.ok(noSs(UNIX_LISTENING_SCRIPT).split("\n").includes(sock));
  } finally {
    tcp.close();
    unix.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
