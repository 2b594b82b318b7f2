// Every preflight rule, evaluated on outputs captured from real hosts (this machine, node
// containers, and typical distribution outputs). Pure: no host is touched.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseClusterText } from "../../provisioner/spec/load.js";
import type { Cluster } from "../../provisioner/spec/schema.js";
import { decideCri, CRI_SOCKETS } from "../../provisioner/preflight/cri.js";
import { parseSections, SECTION_PREFIX, type Sections } from "../../provisioner/preflight/gather.js";
import {
  checksForRoles,
  evaluateChecks,
  knownCheckIds,
  parseIgnoreList,
  parseTcpListeners,
  parseUfw,
  type CheckResultLine,
  type PreflightInput,
} from "../../provisioner/preflight/checks.js";

function cluster(extra = "", name = "kpt-unit"): Cluster {
  return parseClusterText(
    `apiVersion: kubeprov/v1alpha1
kind: Cluster
metadata: {name: ${name}}
spec:
  kubernetesVersion: v1.37.2
${extra}  hosts:
    - {name: cp1, address: 10.213.0.2, roles: [control-plane]}
    - {name: w1, address: 10.213.0.3, roles: [worker]}
`,
    "unit.yaml",
  );
}

/** A healthy node container as gathered here (no /proc/modules, read-only /proc/sys, cgroup v1). */
function healthy(): Sections {
  return {
    time: "1700000000",
    uid: "0",
    hostname: "cp1",
    getent: "10.213.0.2      cp1",
    nproc: "4",
    meminfo: "MemTotal:       24683520 kB",
    swaps: "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority",
    fstab: "# UNCONFIGURED FSTAB FOR BASE SYSTEM",
    container: "yes",
    cgroupfs: "tmpfs",
    binaries: "iptables /usr/sbin/iptables\nconntrack /usr/sbin/conntrack\nsocat /usr/bin/socat\nmount /usr/bin/mount\nip /usr/sbin/ip\nnsenter /usr/bin/nsenter\nethtool /usr/sbin/ethtool\nebtables /usr/sbin/ebtables\ntc /usr/sbin/tc\nfirewall-cmd /usr/bin/firewall-cmd\nufw -\ngetenforce -\nhostnamectl /usr/bin/hostnamectl\ncontainerd /usr/bin/containerd\ndocker -\ncrictl -\nsha256sum /usr/bin/sha256sum\nmodprobe /usr/sbin/modprobe\nsysctl /usr/sbin/sysctl\nsystemctl /usr/bin/systemctl",
    firewalld: "inactive",
    "firewalld-ports": "",
    ufw: "",
    selinux: "Disabled",
    "selinux-config": "",
    sockets: "",
    "unix-listening": "/run/systemd/private\n/run/dbus/system_bus_socket",
    "listening-known": "yes",
    "tcp-listening": "LISTEN 0      128          0.0.0.0:22        0.0.0.0:*    users:((\"sshd\",pid=120,fd=3))",
    "proc-modules": "(no /proc/modules)",
    "modules-builtin": "",
    "kernel-config": "",
    addresses: "lo inet 127.0.0.1/8\neth0 inet 10.213.0.2/24",
    vxlan: "yes",
    filesystems: "nodev\toverlay",
    "bridge-sysctl-dir": "yes",
    "modules-file": "",
    sysctls: "net.ipv4.ip_forward 1 ro\nnet.bridge.bridge-nf-call-iptables 1 ro",
    "sysctl-file": "",
    "containerd-config": "",
    "docker-cgroup-driver": "",
    "existing-files": "",
    "etcd-dir": "",
    marker: "",
  };
}

function input(over: Partial<Sections> = {}, opts: { host?: string; roles?: PreflightInput["roles"]; cluster?: Cluster; localTime?: number; criSocket?: string } = {}): PreflightInput {
  const host = opts.host ?? "cp1";
  return {
    host,
    roles: opts.roles ?? ["control-plane"],
    nodeIP: host === "cp1" ? "10.213.0.2" : "10.213.0.3",
    cluster: opts.cluster ?? cluster(),
    sections: { ...healthy(), ...(host !== "cp1" ? { hostname: host, getent: `10.213.0.3 ${host}` } : {}), ...over },
    localTime: opts.localTime ?? 1700000001,
    criSocket: opts.criSocket,
  };
}

function byId(rs: CheckResultLine[], id: string): CheckResultLine {
  const r = rs.find((x) => x.id === id);
  assert.ok(r, `no result for ${id} (have ${rs.map((x) => x.id).join(", ")})`);
  return r;
}

const failures = (rs: CheckResultLine[]) => rs.filter((r) => r.status === "fail").map((r) => r.id);

test("a healthy node container passes every check (cgroup v1 is a warning naming failCgroupV1: false)", () => {
  const rs = evaluateChecks(input());
  assert.deepEqual(failures(rs), []);
  const warns = rs.filter((r) => r.status === "warn");
  assert.deepEqual(warns.map((w) => w.id), ["SystemVerification"]);
  assert.match(warns[0]!.message, /failCgroupV1: false/);
  assert.match(byId(rs, "KernelModule-br_netfilter").message, /\/proc\/sys\/net\/bridge/);
  assert.match(byId(rs, "KernelModule-overlay").message, /\/proc\/filesystems/);
  assert.match(byId(rs, "CRI").message, /prepare installs and configures containerd/);
});

test("gather sections parse, including empty ones", () => {
  const out = [`${SECTION_PREFIX}time`, "17", `${SECTION_PREFIX}swaps`, `${SECTION_PREFIX}hostname`, "cp1", "", `${SECTION_PREFIX}end`].join("\n");
  assert.deepEqual(parseSections(out), { time: "17", swaps: "", hostname: "cp1" });
});

test("Swap: on fails, only in /etc/fstab warns", () => {
  const on = evaluateChecks(input({ swaps: "Filename\tType\tSize\tUsed\tPriority\n/swapfile                               file\t\t2097148\t\t0\t\t-2" }));
  assert.equal(byId(on, "Swap").status, "fail");
  assert.match(byId(on, "Swap").message, /swapoff -a/);
  const fst = evaluateChecks(input({ fstab: "UUID=abc / ext4 defaults 0 1\n/swapfile none swap sw 0 0\n#/old none swap sw 0 0" }));
  assert.equal(byId(fst, "Swap").status, "warn");
  assert.match(byId(fst, "Swap").message, /\/swapfile/);
});

test("ports: a listener on 6443 fails Port-6443 naming the process; NodePort listeners warn", () => {
  const ss = [
    'LISTEN 0      5            0.0.0.0:6443      0.0.0.0:*    users:(("socat",pid=4242,fd=5))',
    'LISTEN 0      4096               *:31000           *:*',
    'LISTEN 0      4096       127.0.0.1:10259     0.0.0.0:*',
    'LISTEN 0      4096           [::]:2380          [::]:*',
  ].join("\n");
  assert.deepEqual(parseTcpListeners(ss).map((l) => l.port), [6443, 31000, 10259, 2380]);
  const rs = evaluateChecks(input({ "tcp-listening": ss }));
  assert.equal(byId(rs, "Port-6443").status, "fail");
  assert.match(byId(rs, "Port-6443").message, /socat/);
  assert.equal(byId(rs, "Port-10259").status, "fail");
  assert.equal(byId(rs, "Port-2380").status, "fail");
  assert.equal(byId(rs, "Port-2379").status, "pass");
  assert.equal(byId(rs, "Port-30000-32767").status, "warn");
});

test("a worker is never checked for control-plane ports, CPUs, memory or etcd", () => {
  const ss = 'LISTEN 0 5 0.0.0.0:6443 0.0.0.0:* users:(("socat",pid=1,fd=5))\nLISTEN 0 5 0.0.0.0:2379 0.0.0.0:*';
  const rs = evaluateChecks(input({ "tcp-listening": ss, nproc: "1", meminfo: "MemTotal: 1000 kB", "etcd-dir": "member" }, { host: "w1", roles: ["worker"] }));
  for (const id of ["Port-6443", "Port-2379", "Port-2380", "Port-10257", "Port-10259", "NumCPU", "Mem", "DirAvailable--var-lib-etcd", "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml"]) {
    assert.equal(rs.find((r) => r.id === id), undefined, `${id} ran on a worker`);
  }
  assert.ok(rs.find((r) => r.id === "Port-10250"));
  assert.deepEqual(failures(rs), []);
  assert.ok(checksForRoles(["worker"]).every((c) => c.roles.includes("worker")));
});

test("NumCPU and Mem on control planes", () => {
  const rs = evaluateChecks(input({ nproc: "1", meminfo: "MemTotal:        1536000 kB" }));
  assert.equal(byId(rs, "NumCPU").status, "fail");
  assert.equal(byId(rs, "Mem").status, "fail");
  assert.match(byId(rs, "Mem").message, /1700 MB.*1500 MB/);
  const ok = evaluateChecks(input({ nproc: "2", meminfo: `MemTotal: ${1700 * 1024} kB` }));
  assert.equal(byId(ok, "NumCPU").status, "pass");
  assert.equal(byId(ok, "Mem").status, "pass");
});

test("kernel modules: /proc/modules, modules.builtin, kernel config, container evidence, missing", () => {
  const plain = { "proc-modules": "", "bridge-sysctl-dir": "no", filesystems: "" };
  const missing = evaluateChecks(input(plain));
  assert.equal(byId(missing, "KernelModule-br_netfilter").status, "fail");
  assert.match(byId(missing, "KernelModule-br_netfilter").message, /modprobe br_netfilter/);
  assert.equal(byId(missing, "KernelModule-overlay").status, "fail");
  const loaded = evaluateChecks(input({ ...plain, "proc-modules": "xt_conntrack\nbr_netfilter\nbridge\noverlay" }));
  assert.equal(byId(loaded, "KernelModule-br_netfilter").status, "pass");
  assert.equal(byId(loaded, "KernelModule-overlay").status, "pass");
  const builtin = evaluateChecks(input({ ...plain, "modules-builtin": "kernel/net/bridge/br_netfilter.ko", "kernel-config": "CONFIG_OVERLAY_FS=y" }));
  assert.match(byId(builtin, "KernelModule-br_netfilter").message, /modules\.builtin/);
  assert.match(byId(builtin, "KernelModule-overlay").message, /kernel config/);
  // =m is a module, not built in
  assert.equal(byId(evaluateChecks(input({ ...plain, "kernel-config": "CONFIG_OVERLAY_FS=m" })), "KernelModule-overlay").status, "fail");
});

test("sysctls: 1 passes; 0 fails with the fix; 0 on read-only /proc/sys says it cannot be fixed there; missing bridge entry names br_netfilter", () => {
  const rw = evaluateChecks(input({ sysctls: "net.ipv4.ip_forward 0 rw\nnet.bridge.bridge-nf-call-iptables - ro" }));
  const fwd = byId(rw, "FileContent--proc-sys-net-ipv4-ip_forward");
  assert.equal(fwd.status, "fail");
  assert.match(fwd.message, /sysctl --system/);
  assert.match(byId(rw, "FileContent--proc-sys-net-bridge-bridge-nf-call-iptables").message, /br_netfilter/);
  const ro = evaluateChecks(input({ sysctls: "net.ipv4.ip_forward 0 ro\nnet.bridge.bridge-nf-call-iptables 1 ro" }));
  assert.match(byId(ro, "FileContent--proc-sys-net-ipv4-ip_forward").message, /read-only/);
});

test("Hostname: must be lowercase DNS-1123, equal to the node name, and resolve", () => {
  assert.equal(byId(evaluateChecks(input({ hostname: "CP1" })), "Hostname").status, "fail");
  assert.equal(byId(evaluateChecks(input({ hostname: "cp_1" })), "Hostname").status, "fail");
  const other = byId(evaluateChecks(input({ hostname: "node7" })), "Hostname");
  assert.equal(other.status, "fail");
  assert.match(other.message, /named cp1/);
  const unres = byId(evaluateChecks(input({ getent: "" })), "Hostname");
  assert.equal(unres.status, "warn");
  assert.match(unres.message, /10\.213\.0\.2 cp1/);
});

test("binaries: a missing required one fails with the package to install; ethtool/ebtables only warn", () => {
  const b = healthy().binaries!.replace("conntrack /usr/sbin/conntrack", "conntrack -").replace("ethtool /usr/sbin/ethtool", "ethtool -");
  const rs = evaluateChecks(input({ binaries: b }));
  assert.equal(byId(rs, "FileExisting-conntrack").status, "fail");
  assert.match(byId(rs, "FileExisting-conntrack").message, /apt-get install conntrack.*dnf install conntrack-tools/);
  assert.equal(byId(rs, "FileExisting-ethtool").status, "warn");
});

test("SystemVerification: cgroup v2 passes, v1 before 1.35 warns without failCgroupV1, unknown fails", () => {
  assert.equal(byId(evaluateChecks(input({ cgroupfs: "cgroup2fs" })), "SystemVerification").status, "pass");
  const old = byId(evaluateChecks(input({}, { cluster: parseClusterText("apiVersion: kubeprov/v1alpha1\nkind: Cluster\nmetadata: {name: x}\nspec:\n  kubernetesVersion: v1.34.4\n  hosts: [{name: cp1, address: 10.213.0.2, roles: [control-plane]}]\n", "x.yaml") })), "SystemVerification");
  assert.equal(old.status, "warn");
  assert.doesNotMatch(old.message, /failCgroupV1/);
  assert.equal(byId(evaluateChecks(input({ cgroupfs: "" })), "SystemVerification").status, "fail");
});

test("CgroupDriver: containerd's SystemdCgroup vs the cluster file; Docker's driver through cri-dockerd", () => {
  const c = cluster("  containerRuntime: {cgroupDriver: cgroupfs}\n");
  assert.equal(byId(evaluateChecks(input({ "containerd-config": "            SystemdCgroup = false" }, { cluster: c })), "CgroupDriver").status, "pass");
  const mism = byId(evaluateChecks(input({ "containerd-config": "            SystemdCgroup = true" }, { cluster: c })), "CgroupDriver");
  assert.equal(mism.status, "warn");
  assert.match(mism.message, /systemd cgroup driver but spec.containerRuntime.cgroupDriver is cgroupfs/);
  assert.equal(byId(evaluateChecks(input({ "containerd-config": "# managed by kubeprov (prepare phase)\n SystemdCgroup = true" }, { cluster: c })), "CgroupDriver").status, "pass");
  const docker = { sockets: `${CRI_SOCKETS.criDockerd} socket\n${CRI_SOCKETS.docker} socket`, "unix-listening": `${CRI_SOCKETS.criDockerd}\n${CRI_SOCKETS.docker}`, "docker-cgroup-driver": "cgroupfs" };
  const d = byId(evaluateChecks(input(docker)), "CgroupDriver"); // cluster default: systemd
  assert.equal(d.status, "fail");
  assert.match(d.message, /Docker uses the cgroupfs cgroup driver/);
});

test("existing Kubernetes files and etcd data fail, except on a host kubeprov set up for this cluster", () => {
  const files = "/etc/kubernetes/manifests/kube-apiserver.yaml\n/etc/kubernetes/kubelet.conf\n/etc/kubernetes/pki/ca.crt";
  const ss = 'LISTEN 0 4096 *:6443 *:* users:(("kube-apiserver",pid=9,fd=3))';
  const foreign = evaluateChecks(input({ "existing-files": files, "etcd-dir": "member", "tcp-listening": ss }));
  assert.deepEqual(failures(foreign).sort(), ["DirAvailable--var-lib-etcd", "FileAvailable--etc-kubernetes-kubelet.conf", "FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml", "Port-6443"].sort());
  assert.match(byId(foreign, "FileAvailable--etc-kubernetes-kubelet.conf").message, /kubeadm reset|kubeprov reset/);
  const ours = evaluateChecks(input({ "existing-files": files, "etcd-dir": "member", "tcp-listening": ss, marker: "kpt-unit" }));
  assert.deepEqual(failures(ours), []);
  const theirs = evaluateChecks(input({ "existing-files": files, marker: "prod" }));
  assert.match(byId(theirs, "FileAvailable--etc-kubernetes-kubelet.conf").message, /belongs to cluster prod/);
});

test("TimeSkew: more than 30 s either way warns", () => {
  assert.equal(byId(evaluateChecks(input({ time: "1700000045" }, { localTime: 1700000000 })), "TimeSkew").status, "warn");
  assert.match(byId(evaluateChecks(input({ time: "1699999900" }, { localTime: 1700000000 })), "TimeSkew").message, /behind by 100s/);
  assert.equal(byId(evaluateChecks(input({ time: "1700000020" }, { localTime: 1700000000 })), "TimeSkew").status, "pass");
});

test("firewalld and ufw: active with the role's ports closed warns naming them; open passes", () => {
  const fw = byId(evaluateChecks(input({ firewalld: "active", "firewalld-ports": "6443/tcp 22/tcp" })), "Firewalld");
  assert.equal(fw.status, "warn");
  assert.match(fw.message, /2379-2380\/tcp, 10250\/tcp, 10257\/tcp, 10259\/tcp/);
  assert.doesNotMatch(fw.message, /6443/);
  const open = byId(evaluateChecks(input({ firewalld: "active", "firewalld-ports": "6443/tcp 2379-2380/tcp 10250/tcp 10257/tcp 10259/tcp" })), "Firewalld");
  assert.equal(open.status, "pass");
  const worker = byId(evaluateChecks(input({ firewalld: "active", "firewalld-ports": "10250/tcp" }, { host: "w1", roles: ["worker"] })), "Firewalld");
  assert.match(worker.message, /30000-32767\/tcp/);
  const ufwText = "Status: active\n\nTo                         Action      From\n--                         ------      ----\n22/tcp                     ALLOW       Anywhere\n10250                      ALLOW       Anywhere\n30000:32767/tcp            ALLOW       Anywhere\n22/tcp (v6)                ALLOW       Anywhere (v6)";
  assert.equal(parseUfw(ufwText).active, true);
  assert.equal(byId(evaluateChecks(input({ ufw: ufwText }, { host: "w1", roles: ["worker"] })), "Ufw").status, "pass");
  assert.equal(byId(evaluateChecks(input({ ufw: "Status: inactive" })), "Ufw").status, "pass");
  assert.match(byId(evaluateChecks(input({ ufw: ufwText })), "Ufw").message, /6443\/tcp, 2379:2380\/tcp/);
});

test("SELinux enforcing (now or at boot) warns with the fix", () => {
  assert.equal(byId(evaluateChecks(input({ selinux: "Enforcing", "selinux-config": "SELINUX=enforcing" })), "SELinux").status, "warn");
  assert.match(byId(evaluateChecks(input({ selinux: "Permissive", "selinux-config": "SELINUX=enforcing" })), "SELinux").message, /at boot/);
  assert.equal(byId(evaluateChecks(input({ selinux: "Permissive", "selinux-config": "SELINUX=permissive" })), "SELinux").status, "pass");
});

test("CRI rule table", () => {
  const { criDockerd: cd, containerd: ctd, crio, docker } = CRI_SOCKETS;
  const cases: Array<[string[], string, string?]> = [
    [[], "none"],
    [[ctd], "use", ctd],
    [[crio], "use", crio],
    [[cd], "use", cd],
    [[cd, ctd], "use", cd],
    [[cd, ctd, docker], "use", cd],
    [["/run/containerd/containerd.sock".replace("/run/", "/var/run/")], "use", ctd],
    [[docker], "error"],
    [[ctd, crio], "error"],
    [[ctd, docker], "error"],
    [[cd, crio], "error"],
    [[ctd, crio, docker], "error"],
  ];
  for (const [found, kind, socket] of cases) {
    const d = decideCri(found);
    assert.equal(d.kind, kind, `${found.join("+") || "none"} -> ${d.kind}`);
    if (socket) assert.equal(d.kind === "use" && d.socket, socket);
    if (d.kind === "error") {
      for (const s of found) assert.ok(d.reason.includes(s), `${d.reason} names ${s}`);
      assert.match(d.reason, /criSocket/);
    }
  }
  assert.match((decideCri([docker]) as { reason: string }).reason, /not a CRI runtime since Kubernetes 1\.24.*cri-dockerd/);
  // the cluster file always wins
  const o = decideCri([ctd, crio], "unix:///var/run/crio/crio.sock");
  assert.equal(o.kind === "use" && o.runtime, "crio");
});

test("CRI check: only LISTENING sockets count; criSocket overrides; a stale socket file is ignored", () => {
  const { containerd: ctd, crio } = CRI_SOCKETS;
  const two = { sockets: `${ctd} socket\n${crio} socket`, "unix-listening": `${ctd}\n${crio}` };
  const rs = byId(evaluateChecks(input(two)), "CRI");
  assert.equal(rs.status, "fail");
  assert.ok(rs.message.includes(ctd) && rs.message.includes(crio));
  assert.equal(byId(evaluateChecks(input({ ...two, "unix-listening": ctd })), "CRI").status, "pass"); // stale crio.sock file
  assert.equal(byId(evaluateChecks(input(two, { criSocket: crio })), "CRI").status, "pass");
  assert.equal(byId(evaluateChecks(input({}, { criSocket: crio })), "CRI").status, "fail"); // nothing listens there
  assert.equal(byId(evaluateChecks(input({}, { criSocket: ctd })), "CRI").status, "pass"); // prepare starts containerd
  // without ss, the socket file is all there is
  assert.equal(byId(evaluateChecks(input({ ...two, "unix-listening": "", "listening-known": "no" })), "CRI").status, "fail");
});

test("--ignore-preflight-errors: IDs (any case), all, unknown ones reported; failures become ignored warnings", () => {
  const p = parseIgnoreList(["port-6443,Swap", " NumCPU "]);
  assert.deepEqual([...p.ids].sort(), ["NumCPU", "Port-6443", "Swap"]);
  assert.deepEqual(p.unknown, []);
  assert.deepEqual(parseIgnoreList("Bogus,Swap").unknown, ["Bogus"]);
  assert.equal(parseIgnoreList(["all"]).all, true);
  assert.ok(knownCheckIds().includes("FileAvailable--etc-kubernetes-manifests-kube-apiserver.yaml"));
  assert.ok(knownCheckIds().includes("DirAvailable--var-lib-etcd"));
  assert.ok(knownCheckIds().includes("FileContent--proc-sys-net-bridge-bridge-nf-call-iptables"));
  const ss = 'LISTEN 0 5 0.0.0.0:6443 0.0.0.0:* users:(("socat",pid=1,fd=5))';
  const rs = evaluateChecks(input({ "tcp-listening": ss, nproc: "1" }), parseIgnoreList("Port-6443"));
  assert.deepEqual({ ...byId(rs, "Port-6443"), message: "" }, { id: "Port-6443", status: "warn", message: "", ignored: true });
  assert.equal(byId(rs, "NumCPU").status, "fail");
  assert.deepEqual(failures(evaluateChecks(input({ "tcp-listening": ss, nproc: "1" }), parseIgnoreList("all"))), []);
});

test("check IDs are unique", () => {
  const ids = knownCheckIds();
  assert.equal(new Set(ids).size, ids.length);
});

test("HAVirtualIP: the VIP must lie in a subnet of spec.ha.interface on each control plane", () => {
  const ha = parseClusterText(
    `apiVersion: kubeprov/v1alpha1
kind: Cluster
metadata: {name: kpt-unit}
spec:
  ha: {enabled: true, virtualIP: 10.213.0.250, interface: eth0}
  hosts:
    - {name: cp1, address: 10.213.0.2, roles: [control-plane]}
    - {name: cp2, address: 10.213.0.4, roles: [control-plane]}
    - {name: w1, address: 10.213.0.3, roles: [worker]}
`,
    "unit.yaml",
  );
  const addrs = "lo inet 127.0.0.1/8\neth0 inet 10.213.0.2/24\neth0 inet6 fe80::1/64";
  assert.equal(byId(evaluateChecks(input({ addresses: addrs }, { cluster: ha })), "HAVirtualIP").status, "pass");
  const outside = byId(evaluateChecks(input({ addresses: "eth0 inet 10.213.1.2/24" }, { cluster: ha })), "HAVirtualIP");
  assert.equal(outside.status, "fail");
  assert.match(outside.message, /spec\.ha\.virtualIP: 10\.213\.0\.250 is outside the subnets of eth0 \(10\.213\.1\.0\/24\)/);
  const noIface = byId(evaluateChecks(input({ addresses: "ens3 inet 10.213.0.2/24" }, { cluster: ha })), "HAVirtualIP");
  assert.match(noIface.message, /spec\.ha\.interface: eth0 has no IP address on this host/);
  // Without HA there is nothing to check; workers are not asked.
  assert.equal(byId(evaluateChecks(input({ addresses: "" })), "HAVirtualIP").status, "pass");
  assert.ok(!evaluateChecks(input({ addresses: "" }, { cluster: ha, host: "w1", roles: ["worker"] })).some((r) => r.id === "HAVirtualIP"));
});

test("FlannelBackend: host-gw needs the other nodes on this host's subnets; vxlan needs the kernel's vxlan", () => {
  assert.equal(byId(evaluateChecks(input({})), "FlannelBackend").status, "pass");
  const routed = byId(evaluateChecks(input({ addresses: "lo inet 127.0.0.1/8\neth0 inet 10.213.1.2/24" })), "FlannelBackend");
  assert.equal(routed.status, "fail");
  assert.match(routed.message, /spec\.networking\.flannelBackend: host-gw needs every node on one L2 network, but w1 \(10\.213\.0\.3\) is on none of this host's subnets \(10\.213\.1\.0\/24\): set spec\.networking\.flannelBackend: vxlan/);
  const vxlan = cluster("  networking: {flannelBackend: vxlan}\n");
  assert.equal(byId(evaluateChecks(input({ addresses: "eth0 inet 10.213.1.2/24" }, { cluster: vxlan })), "FlannelBackend").status, "pass");
  const noVxlan = byId(evaluateChecks(input({ vxlan: "no" }, { cluster: vxlan })), "FlannelBackend");
  assert.equal(noVxlan.status, "fail");
  assert.match(noVxlan.message, /could not make a vxlan interface/);
  assert.equal(byId(evaluateChecks(input({ vxlan: "unknown" }, { cluster: vxlan })), "FlannelBackend").status, "warn");
  // Other network add-ons are not flannel's business.
  assert.equal(byId(evaluateChecks(input({ addresses: "eth0 inet 10.213.1.2/24" }, { cluster: cluster("  networking: {cni: bridge}\n") })), "FlannelBackend").status, "pass");
});

test("NetworkUnchanged: a running cluster's network add-on and subnets are not switched in place", () => {
  const stored = "apiVersion: kubeprov/v1alpha1\nkind: Cluster\nspec:\n  networking:\n    cni: bridge\n    podSubnet: 10.244.0.0/16\n    serviceSubnet: 10.96.0.0/12\n";
  assert.equal(byId(evaluateChecks(input({ "stored-cluster": "" })), "NetworkUnchanged").status, "pass");
  const switched = byId(evaluateChecks(input({ "stored-cluster": stored })), "NetworkUnchanged");
  assert.equal(switched.status, "fail");
  assert.match(switched.message, /spec\.networking\.cni: the cluster runs with "bridge", the file says "flannel"/);
  const same = cluster("  networking: {cni: bridge}\n");
  assert.equal(byId(evaluateChecks(input({ "stored-cluster": stored }, { cluster: same })), "NetworkUnchanged").status, "pass");
  const subnet = cluster("  networking: {cni: bridge, podSubnet: 10.50.0.0/16}\n");
  assert.match(byId(evaluateChecks(input({ "stored-cluster": stored }, { cluster: subnet })), "NetworkUnchanged").message, /spec\.networking\.podSubnet: the cluster runs with "10\.244\.0\.0\/16"/);
  const flannel = stored.replace("cni: bridge", "cni: flannel\n    flannelBackend: host-gw");
  const backend = byId(evaluateChecks(input({ "stored-cluster": flannel }, { cluster: cluster("  networking: {flannelBackend: vxlan}\n") })), "NetworkUnchanged");
  assert.match(backend.message, /spec\.networking\.flannelBackend: the cluster runs with "host-gw", the file says "vxlan"/);
});

test("RegistryMirrors: each mirror's /v2/ asked with curl from the host; one that is down or not a registry is named", async () => {
  // Real answers: a registry-like server on loopback (200 at /v2/), a web server that is no
  // registry (404), and a port nothing listens on (refused).
  const { createServer } = await import("node:http");
  const { execa } = await import("execa");
  const { mirrorProbeScript } = await import("../../provisioner/preflight/gather.js");
  const registry = createServer((req, res) => {
    res.writeHead(req.url === "/v2/" ? 200 : 404, { "content-type": "application/json" });
    res.end("{}");
  });
  const web = createServer((_req, res) => {
    res.writeHead(404);
    res.end();
  });
  const listen = (s: ReturnType<typeof createServer>) => new Promise<number>((r) => s.listen(0, "127.0.0.1", () => r((s.address() as { port: number }).port)));
  const [rp, wp] = [await listen(registry), await listen(web)];
  const closed = createServer();
  const cp = await listen(closed);
  await new Promise((r) => closed.close(r));
  try {
    const up = `http://127.0.0.1:${rp}`;
    const notRegistry = `http://127.0.0.1:${wp}/`;
    const down = `http://127.0.0.1:${cp}`;
    const probed = (await execa("sh", ["-c", mirrorProbeScript([up, notRegistry, down])])).stdout;
    const withMirrors = (m: Record<string, string[]>) => cluster(`  registryMirrors: ${JSON.stringify(m)}\n`);
    const ok = byId(evaluateChecks(input({ mirrors: probed }, { cluster: withMirrors({ "docker.io": [up] }) })), "RegistryMirrors");
    assert.equal(ok.status, "pass", ok.message);
    const bad = byId(evaluateChecks(input({ mirrors: probed }, { cluster: withMirrors({ "docker.io": [up, down], "quay.io": [notRegistry] }) })), "RegistryMirrors");
    assert.equal(bad.status, "fail");
    assert.match(bad.message, new RegExp(`spec\\.registryMirrors\\["docker\\.io"\\]: ${down.replace(/\./g, "\\.")} does not work from here \\(the connection was refused or the address is unreachable\\): pulls of docker\\.io's images`));
    assert.match(bad.message, /spec\.registryMirrors\["quay\.io"\]: \S+ does not work from here \(it answers HTTP 404 at \/v2\/, which is not a registry's answer\)/);
    assert.doesNotMatch(bad.message, new RegExp(`${up}[^0-9/]`), "the mirror that answers is not named");
    assert.equal(byId(evaluateChecks(input({ mirrors: "- nocurl" }, { cluster: withMirrors({ "docker.io": [up] }) })), "RegistryMirrors").status, "warn");
    assert.equal(byId(evaluateChecks(input({})), "RegistryMirrors").status, "pass", "no mirrors, nothing to ask");
  } finally {
    await new Promise((r) => registry.close(r));
    await new Promise((r) => web.close(r));
  }
});
