// Pure parts around the drivers: node image recipe (mirror, packages, tag), the cluster file `up`
// writes, the kubeconfig merge, `up`'s flag checks, the ssh command line, VirtualBox commands.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync, appendFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { parsePackages, recipeDir, recipeHash, nodeImageRef } from "../../provisioner/drivers/docker/nodeimage.js";
import { findMirror } from "../../provisioner/images/debian-mirror.js";
import { renderDriverClusterFile } from "../../provisioner/drivers/clusterfile.js";
import { knownHostsLines } from "../../provisioner/drivers/localfiles.js";
import { mergeKubeconfig, unmergeKubeconfig } from "../../provisioner/drivers/localkubeconfig.js";
import { parseClusterText } from "../../provisioner/spec/load.js";
import { planUp } from "../../provisioner/cli/commands/up.js";
import { sshArgs } from "../../provisioner/cli/commands/ssh.js";
import { UsageError } from "../../provisioner/errors.js";
import type { Machine } from "../../provisioner/drivers/driver.js";

test("findMirror: deb822 .sources (this machine's form) and one-line lists", () => {
  const sources = [
    {
      name: "debian.sources",
      text:
        "Types: deb\n# http://snapshot.debian.org/archive/debian/20250520T000000Z\nURIs: http://deb.debian.org/debian\nSuites: bookworm bookworm-updates\nComponents: main\n\n" +
        "Types: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bookworm-security\nComponents: main\n",
    },
  ];
  assert.equal(findMirror(sources, "bookworm"), "http://deb.debian.org/debian");
  assert.equal(findMirror([{ name: "sources.list", text: "deb [arch=amd64] http://mirror.example/debian bookworm main\n" }], "bookworm"), "http://mirror.example/debian");
  assert.equal(findMirror([{ name: "x.sources", text: "Types: deb-src\nURIs: http://a/\nSuites: bookworm\n" }], "bookworm"), undefined);
});

test("node image packages: what nodes need, and the disabled-by-default services", () => {
  const pkgs = parsePackages(readFileSync(join(recipeDir(), "packages.txt"), "utf8"));
  for (const p of ["systemd", "openssh-server", "iproute2", "iptables", "conntrack", "socat", "ethtool", "ebtables", "containerd", "runc", "haproxy", "keepalived", "firewalld"])
    assert.ok(pkgs.includes(p), p);
  assert.ok(pkgs.every((p) => /^[a-z0-9][a-z0-9+.-]+$/.test(p)), "only package names, no comments");
  const custom = readFileSync(join(recipeDir(), "customize.sh"), "utf8");
  for (const unit of ["containerd.service", "haproxy.service", "keepalived.service", "firewalld.service"]) assert.ok(custom.includes(unit), unit);
  assert.match(custom, /rm -f \/etc\/ssh\/ssh_host_\*/);
});

test("node image tag: a hash of the recipe; changes with any recipe file, not with the README", () => {
  const dir = mkdtempSync(join(tmpdir(), "kpt-recipe-"));
  try {
    cpSync(recipeDir(), dir, { recursive: true });
    const h0 = recipeHash(dir);
    assert.equal(h0, recipeHash(recipeDir()));
    assert.match(nodeImageRef(dir), /^kubeprov\/node:[0-9a-f]{12}$/);
    appendFileSync(join(dir, "README.md"), "\nmore prose\n");
    assert.equal(recipeHash(dir), h0);
    appendFileSync(join(dir, "packages.txt"), "jq\n");
    const h1 = recipeHash(dir);
    assert.notEqual(h1, h0);
    writeFileSync(join(dir, "files/usr/local/sbin/kubeprov-node-setup"), "#!/bin/sh\n");
    assert.notEqual(recipeHash(dir), h1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const machine = (node: string, address: string, roles: Machine["roles"]): Machine => ({
  node,
  machine: node,
  address,
  roles,
  state: "running",
  reach: { kind: "ssh", host: address, port: 22, user: "root", identityFile: "/k/id", knownHostsFile: "/k/kh" },
});

test("the cluster file up writes is a valid cluster file (single node and HA)", () => {
  const one = renderDriverClusterFile({
    name: "demo",
    driver: "docker",
    kubernetesVersion: "v1.37.2",
    machines: [machine("demo-control-plane", "10.213.3.10", ["control-plane", "worker"])],
    identityFile: "/state/demo/id_ed25519",
    knownHostsFile: "/state/demo/known_hosts",
    artifactsDir: "/cache/bundle/v1.37.2",
    subnet: "10.213.3.0/24",
  });
  const c1 = parseClusterText(one, "cluster.yaml");
  assert.equal(c1.metadata.name, "demo");
  assert.equal(c1.spec.containerRuntime.cgroupDriver, "cgroupfs");
  assert.equal(c1.spec.ssh.useAgent, false);
  assert.equal(c1.spec.ssh.identityFile, "/state/demo/id_ed25519");
  assert.equal(c1.spec.ssh.knownHostsFile, "/state/demo/known_hosts");
  assert.equal(c1.spec.artifacts.path, "/cache/bundle/v1.37.2");
  assert.deepEqual(c1.spec.hosts.map((h) => [h.name, h.address, h.roles]), [["demo-control-plane", "10.213.3.10", ["control-plane", "worker"]]]);
  assert.equal(c1.spec.ha.enabled, false);

  const ha = renderDriverClusterFile({
    name: "ha",
    driver: "docker",
    kubernetesVersion: "v1.37.2",
    machines: [
      machine("ha-control-plane", "10.213.4.10", ["control-plane"]),
      machine("ha-control-plane2", "10.213.4.11", ["control-plane"]),
      machine("ha-control-plane3", "10.213.4.12", ["control-plane"]),
      machine("ha-worker", "10.213.4.13", ["worker"]),
    ],
    identityFile: "/i",
    knownHostsFile: "/k",
    artifactsDir: "/a",
    virtualIP: "10.213.4.100",
  });
  const c2 = parseClusterText(ha, "cluster.yaml");
  assert.equal(c2.spec.ha.enabled, true);
  assert.equal(c2.spec.ha.virtualIP, "10.213.4.100");
  assert.equal(c2.spec.controlPlaneEndpoint, "10.213.4.100:8443");
  assert.equal(c2.spec.hosts.length, 4);
});

test("known_hosts lines: one per name per host key", () => {
  const text = knownHostsLines([{ names: ["10.213.1.10", "n1"], keys: ["ssh-ed25519 AAAA root@n1", "ecdsa-sha2-nistp256 BBBB root@n1"] }]);
  assert.equal(text, "10.213.1.10 ssh-ed25519 AAAA\nn1 ssh-ed25519 AAAA\n10.213.1.10 ecdsa-sha2-nistp256 BBBB\nn1 ecdsa-sha2-nistp256 BBBB\n");
  assert.equal(knownHostsLines([]), "");
});

test("kubeconfig merge: context NAME added and made current, others kept; unmerge removes only NAME's", () => {
  const admin = "apiVersion: v1\nkind: Config\nclusters:\n- name: kubernetes\n  cluster: {server: https://10.213.1.10:6443, certificate-authority-data: Q0E=}\nusers:\n- name: kubernetes-admin\n  user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}\ncontexts:\n- name: kubernetes-admin@kubernetes\n  context: {cluster: kubernetes, user: kubernetes-admin}\ncurrent-context: kubernetes-admin@kubernetes\n";
  const existing = "apiVersion: v1\nkind: Config\nclusters:\n- name: other\n  cluster: {server: https://other:6443}\nusers:\n- name: other\n  user: {token: x}\ncontexts:\n- name: other\n  context: {cluster: other, user: other}\ncurrent-context: other\n";
  const merged = parse(mergeKubeconfig(existing, admin, "demo"));
  assert.deepEqual(merged.clusters.map((c: any) => c.name), ["other", "demo"]);
  assert.equal(merged.clusters[1].cluster.server, "https://10.213.1.10:6443");
  assert.deepEqual(merged.users.map((u: any) => u.name), ["other", "demo-admin"]);
  assert.deepEqual(merged.contexts[1], { name: "demo", context: { cluster: "demo", user: "demo-admin" } });
  assert.equal(merged["current-context"], "demo");
  // Merging again replaces, never duplicates.
  const twice = parse(mergeKubeconfig(mergeKubeconfig(existing, admin, "demo"), admin, "demo"));
  assert.equal(twice.clusters.length, 2);
  const { text, changed } = unmergeKubeconfig(mergeKubeconfig(existing, admin, "demo"), "demo");
  assert.ok(changed);
  const back = parse(text);
  assert.deepEqual(back.clusters.map((c: any) => c.name), ["other"]);
  assert.equal(back["current-context"], "");
  assert.equal(unmergeKubeconfig(existing, "demo").changed, false);
  assert.deepEqual(parse(mergeKubeconfig("", admin, "x")).contexts, [{ name: "x", context: { cluster: "x", user: "x-admin" } }]);
});

const upBase = { name: "kpt-a", nodes: 1, controlPlanes: 1, kubernetesVersion: "v1.37.2", kubernetes: true, driver: "docker" };

test("up flags: bad input is a usage error (exit 2) before anything is created", () => {
  const bad = (o: Partial<typeof upBase> & { memory?: string; cpus?: number }, re: RegExp) =>
    assert.throws(() => planUp({ ...upBase, ...o }), (e: unknown) => e instanceof UsageError && e.exitCode === 2 && re.test((e as Error).message));
  bad({ name: "Bad_Name" }, /DNS-1123/);
  bad({ name: "-x" }, /DNS-1123/);
  bad({ nodes: 2, controlPlanes: 3, kubernetes: false }, /more than --nodes/);
  // Several control planes and workers are one plan: the HA layout reserves a virtual IP.
  assert.equal(planUp({ ...upBase, nodes: 3 }).machines.machines.length, 3);
  assert.equal(planUp({ ...upBase, nodes: 3, controlPlanes: 3 }).machines.reserveVirtualIP, true);
  assert.equal(planUp({ ...upBase, nodes: 3, controlPlanes: 1 }).machines.reserveVirtualIP, false);
  bad({ kubernetesVersion: "1.37" }, /must look like/);
  bad({ memory: "lots" }, /--memory/);
  bad({ driver: "ssh" }, /apply -f/);
  bad({ name: "a".repeat(50) }, /too long/);
  bad({ nodes: 91, kubernetes: false }, /at most 90/);
  assert.throws(() => planUp({ ...upBase, cni: "bridge", flannelBackend: "vxlan" }), /--flannel-backend vxlan is flannel's setting, and --cni is bridge/);
  assert.equal(planUp({ ...upBase, cni: "flannel", flannelBackend: "vxlan" }).machines.machines.length, 1);
});

test("up flags: an even number of control planes warns (etcd quorum); the plan reserves a VIP for HA", () => {
  const p = planUp({ ...upBase, nodes: 4, controlPlanes: 2, kubernetes: false });
  assert.equal(p.warnings.length, 1);
  assert.match(p.warnings[0], /even.*quorum/);
  assert.equal(p.machines.reserveVirtualIP, true);
  const one = planUp({ ...upBase, memory: "1g", cpus: 2 });
  assert.deepEqual(one.warnings, []);
  assert.equal(one.machines.reserveVirtualIP, false);
  assert.deepEqual(one.machines.machines, [{ node: "kpt-a-control-plane", roles: ["control-plane", "worker"], cpus: 2, memory: 1024 ** 3 }]);
});

test("ssh command line: the cluster's key and known_hosts, strict host key checking, words after --", () => {
  const a = sshArgs({ address: "10.213.1.10", user: "root", port: 22, identityFile: "/s/id", knownHostsFile: "/s/kh", command: ["echo", "hi"], tty: true });
  const s = a.join(" ");
  assert.ok(s.includes("-i /s/id"));
  assert.ok(s.includes("UserKnownHostsFile=/s/kh"));
  assert.ok(s.includes("StrictHostKeyChecking=yes"));
  assert.ok(!s.includes("StrictHostKeyChecking=no") && !s.includes("accept-new"));
  assert.deepEqual(a.slice(-4), ["root@10.213.1.10", "--", "echo", "hi"]);
  assert.ok(a.includes("-T"));
  const shell = sshArgs({ address: "h", user: "root", port: 22, identityFile: "i", knownHostsFile: "k", command: [], tty: true });
  assert.ok(shell.includes("-t"));
  assert.equal(shell.at(-1), "root@h");
});
