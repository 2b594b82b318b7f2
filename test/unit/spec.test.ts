// The cluster file: every error names file:line:col and the field path, all problems are reported,
// the printed defaults validate and agree with the schema, and the real CLI reads -f - from stdin.
import { test, describe } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import { parseClusterText, formatPath } from "../../provisioner/spec/load.js";
import { defaultsText, EXAMPLE_SETTINGS } from "../../provisioner/spec/defaults.js";
import { ConfigError } from "../../provisioner/errors.js";
import {
  cidrContains,
  cidrsOverlap,
  nthAddress,
  parseCIDR,
  parseHostPort,
  parseIP,
  formatIP,
} from "../../provisioner/spec/cidr.js";
import { DEFAULT_KUBERNETES_VERSION } from "../../provisioner/constants.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const bin = join(root, "bin", "kubeprov.js");

interface Fields {
  name?: string;
  endpoint?: string;
  pod?: string;
  svc?: string;
  dns?: string;
  mask?: string;
  sans?: string;
  haEnabled?: string;
  h1name?: string;
  h1addr?: string;
  h1roles?: string;
  h2name?: string;
  h2addr?: string;
  h2roles?: string;
  tail?: string;
}

// Every line keeps its number whatever the values, so positions below are fixed:
//  6 controlPlaneEndpoint (value at col 25), 8 podSubnet (col 16), 9 serviceSubnet (col 20),
// 10 dnsDomain (col 16), 11 nodeCidrMaskSize (col 23), 13 certSANs (col 15 = first item),
// 15 ha.enabled (col 14), 17 hosts[0].name (col 13), 18 hosts[0].address (col 16),
// 19 hosts[0].roles (col 14, first item col 15), 20-22 the same for hosts[1].
function clusterYaml(f: Fields = {}): string {
  return `apiVersion: kubeprov/v1alpha1
kind: Cluster
metadata:
  name: ${f.name ?? "demo"}
spec:
  controlPlaneEndpoint: ${f.endpoint ?? '"192.168.99.100:6443"'}
  networking:
    podSubnet: ${f.pod ?? "10.244.0.0/16"}
    serviceSubnet: ${f.svc ?? "10.96.0.0/12"}
    dnsDomain: ${f.dns ?? "cluster.local"}
    nodeCidrMaskSize: ${f.mask ?? "24"}
  controlPlane:
    certSANs: [${f.sans ?? "api.example.internal"}]
  ha:
    enabled: ${f.haEnabled ?? "false"}
  hosts:
    - name: ${f.h1name ?? "master1"}
      address: ${f.h1addr ?? "192.168.99.201"}
      roles: [${f.h1roles ?? "control-plane"}]
    - name: ${f.h2name ?? "node1"}
      address: ${f.h2addr ?? "192.168.99.202"}
      roles: [${f.h2roles ?? "worker"}]
${f.tail ?? ""}`;
}

/** The problems parseClusterText reports (fails the test if the text is accepted). */
function problems(text: string, source = "cluster.yaml"): string[] {
  try {
    parseClusterText(text, source);
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected a ConfigError, got ${String(e)}`);
    assert.equal(e.exitCode, 2);
    return e.problems;
  }
  assert.fail("the cluster file was accepted but should not be");
}

function assertProblems(text: string, expected: string[]): void {
  assert.deepEqual(problems(text), expected);
}

describe("cluster file: schema errors with file:line:col and field path", () => {
  test("the base file is valid and gets defaults", () => {
    const c = parseClusterText(clusterYaml(), "cluster.yaml");
    assert.equal(c.spec.hosts.length, 2);
    assert.equal(c.spec.kubernetesVersion, DEFAULT_KUBERNETES_VERSION);
    assert.equal(c.spec.ssh.port, 22);
    assert.equal(c.spec.hosts[0].connection, "ssh");
    assert.equal(c.spec.networking.dnsDomain, "cluster.local");
  });

  test("a role that is not one of the roles", () => {
    assertProblems(clusterYaml({ h2roles: "master" }), [
      'cluster.yaml:22:15 spec.hosts[1].roles[0]: "master" is not one of control-plane, worker, etcd',
    ]);
  });

  test("unknown fields are errors, at the key, with a suggestion", () => {
    assertProblems(clusterYaml({ tail: "  sshh: {user: root}\n" }), [
      'cluster.yaml:23:3 spec.sshh: unknown field "sshh" (did you mean "ssh"?)',
    ]);
    assertProblems(clusterYaml({ tail: "    - {name: n2, address: 10.0.0.9, roles: [worker], colour: blue}\n" }), [
      'cluster.yaml:23:54 spec.hosts[2].colour: unknown field "colour" (known fields: name, address, internalAddress, roles, ssh, connection, criSocket, labels)',
    ]);
  });

  test("every problem is reported, not only the first", () => {
    const p = problems(clusterYaml({ name: "Demo_1", h1roles: "master", mask: "40", tail: "  bogus: 1\n" }));
    assert.deepEqual(p, [
      `cluster.yaml:4:9 metadata.name: "Demo_1" must be a DNS-1123 label (lowercase letters, digits and '-', at most 63, starting and ending alphanumeric)`,
      "cluster.yaml:11:23 spec.networking.nodeCidrMaskSize: must be at most 28, got 40",
      'cluster.yaml:19:15 spec.hosts[0].roles[0]: "master" is not one of control-plane, worker, etcd',
      'cluster.yaml:23:3 spec.bogus: unknown field "bogus" (known fields: kubernetesVersion, controlPlaneEndpoint, networking, controlPlane, ha, containerRuntime, artifacts, images, registryMirrors, pki, addons, firewall, ssh, hosts)',
    ]);
  });

  test("host name not a DNS-1123 label", () => {
    assertProblems(clusterYaml({ h2name: "Node_1" }), [
      `cluster.yaml:20:13 spec.hosts[1].name: "Node_1" must be a DNS-1123 label (lowercase letters, digits and '-', at most 63, starting and ending alphanumeric)`,
    ]);
  });

  test("wrong types and missing fields", () => {
    assertProblems(clusterYaml({ mask: '"24"' }), ['cluster.yaml:11:23 spec.networking.nodeCidrMaskSize: must be a number, got the string "24"']);
    const noRoles = clusterYaml().replace("      roles: [worker]\n", "");
    assertProblems(noRoles, ["cluster.yaml:20:7 spec.hosts[1].roles: required field is missing"]);
    assertProblems(clusterYaml({ h1roles: "" }), ["cluster.yaml:19:14 spec.hosts[0].roles: must not be empty (at least 1 item)"]);
    assertProblems(clusterYaml().replace("apiVersion: kubeprov/v1alpha1", "apiVersion: v1"), [
      'cluster.yaml:1:13 apiVersion: must be "kubeprov/v1alpha1", got "v1"',
    ]);
  });

  test("YAML syntax errors carry their position", () => {
    const p = problems(clusterYaml().replace("    podSubnet: 10.244.0.0/16", "    podSubnet: [10.244.0.0/16"));
    assert.equal(p.length >= 1, true);
    assert.match(p[0], /^cluster\.yaml:\d+:\d+ YAML syntax error: /);
    assertProblems(clusterYaml().replace("    dnsDomain: cluster.local\n", "    dnsDomain: cluster.local\n    dnsDomain: example.local\n"), [
      'cluster.yaml:11:5 spec.networking.dnsDomain: duplicate field "dnsDomain" (first given at line 10)',
    ]);
    assertProblems(clusterYaml().replace("  ha:\n", "  ha:\n  ha:\n"), ['cluster.yaml:15:3 spec.ha: duplicate field "ha" (first given at line 14)']);
  });

  test("empty file, not a mapping, several documents", () => {
    assertProblems("", ["cluster.yaml:1:1 (file): the file is empty; expected a cluster (kubeprov config print-defaults shows one)"]);
    assertProblems("just text\n", ['cluster.yaml:1:1 (file): must be a mapping, got the string "just text"']);
    assertProblems(clusterYaml() + "---\nkind: Cluster\n", ["cluster.yaml:24:1 (file): more than one YAML document; a cluster file holds exactly one"]);
  });
});

describe("cluster file: semantic checks", () => {
  test("duplicate host names and addresses", () => {
    assertProblems(clusterYaml({ h2name: "master1" }), ['cluster.yaml:20:13 spec.hosts[1].name: duplicate host name "master1" (also spec.hosts[0])']);
    assertProblems(clusterYaml({ h2addr: "192.168.99.201" }), ["cluster.yaml:21:16 spec.hosts[1].address: duplicate address 192.168.99.201 (port 22), also spec.hosts[0]"]);
    // The same address with another SSH port is a different host (sshd on loopback ports).
    const c = parseClusterText(clusterYaml({ h2addr: "192.168.99.201", tail: "      ssh: {port: 2222}\n" }), "cluster.yaml");
    assert.equal(c.spec.hosts[1].ssh?.port, 2222);
  });

  test("invalid CIDRs", () => {
    assertProblems(clusterYaml({ pod: "10.244.0.0/33" }), ['cluster.yaml:8:16 spec.networking.podSubnet: "10.244.0.0/33" is not a valid CIDR (like 10.244.0.0/16 or fd00:10:244::/56)']);
    assertProblems(clusterYaml({ svc: "10.96.0.1/12" }), ["cluster.yaml:9:20 spec.networking.serviceSubnet: 10.96.0.1/12 has host bits set; did you mean 10.96.0.0/12?"]);
    assertProblems(clusterYaml({ pod: "banana" }), ['cluster.yaml:8:16 spec.networking.podSubnet: "banana" is not a valid CIDR (like 10.244.0.0/16 or fd00:10:244::/56)']);
  });

  test("overlapping pod, service and host networks", () => {
    assertProblems(clusterYaml({ svc: "10.244.128.0/20" }), ["cluster.yaml:9:20 spec.networking.serviceSubnet: 10.244.128.0/20 overlaps the pod subnet 10.244.0.0/16"]);
    assertProblems(clusterYaml({ h2addr: "10.244.3.7" }), ["cluster.yaml:21:16 spec.hosts[1].address: host address 10.244.3.7 is inside the pod subnet 10.244.0.0/16"]);
    assertProblems(clusterYaml({ h1addr: "10.100.0.5" }), ["cluster.yaml:18:16 spec.hosts[0].address: host address 10.100.0.5 is inside the service subnet 10.96.0.0/12"]);
  });

  test("controlPlaneEndpoint must be host:port", () => {
    const at = "cluster.yaml:6:25 spec.controlPlaneEndpoint:";
    assertProblems(clusterYaml({ endpoint: "192.168.99.100" }), [`${at} "192.168.99.100" must be host:port (the port is missing)`]);
    assertProblems(clusterYaml({ endpoint: '"192.168.99.100:70000"' }), [`${at} "192.168.99.100:70000" port "70000" is not a number from 1 to 65535`]);
    assertProblems(clusterYaml({ endpoint: '"fd00::1:6443"' }), [`${at} "fd00::1:6443" must be host:port; write an IPv6 address in brackets ([fd00::1]:6443)`]);
    assertProblems(clusterYaml({ endpoint: '"bad_name:6443"' }), [`${at} "bad_name:6443" "bad_name" is neither an IP address nor a DNS name`]);
    assertProblems(clusterYaml({ endpoint: '"300.1.1.1:6443"' }), [`${at} "300.1.1.1:6443" "300.1.1.1" is not a valid IPv4 address`]);
    for (const ok of ['"[fd00::10]:6443"', '"api.example.internal:443"', '"192.168.99.100:8443"'])
      parseClusterText(clusterYaml({ endpoint: ok }), "cluster.yaml");
  });

  test("no control-plane host", () => {
    assertProblems(clusterYaml({ h1roles: "worker" }), ["cluster.yaml:17:5 spec.hosts: no host has the control-plane role; at least one must"]);
  });

  test("HA: enabled without virtualIP, VIP inside the pod subnet or taken by a host", () => {
    assertProblems(clusterYaml({ haEnabled: "true", h2roles: "control-plane" }), [
      "cluster.yaml:15:5 spec.ha: ha.enabled needs virtualIP (the address keepalived moves between control planes)",
    ]);
    assertProblems(clusterYaml({ haEnabled: "true" }), [
      "cluster.yaml:15:5 spec.ha: ha.enabled needs virtualIP (the address keepalived moves between control planes)",
      "cluster.yaml:15:14 spec.ha.enabled: HA needs at least 2 control-plane hosts (3 for etcd to survive a failure); found 1",
    ]);
    const vip = (ip: string) => clusterYaml({ h2roles: "control-plane" }).replace("    enabled: false", `    enabled: true\n    virtualIP: ${ip}`);
    assertProblems(vip("10.244.0.9"), ["cluster.yaml:16:16 spec.ha.virtualIP: virtual IP 10.244.0.9 is inside the pod subnet 10.244.0.0/16"]);
    assertProblems(vip("192.168.99.202"), ['cluster.yaml:16:16 spec.ha.virtualIP: virtual IP 192.168.99.202 is the address of host "node1" (spec.hosts[1]); it must be an unused address']);
    assertProblems(vip("192.168.99.300"), ['cluster.yaml:16:16 spec.ha.virtualIP: "192.168.99.300" is not an IP address']);
    parseClusterText(vip("192.168.99.100"), "cluster.yaml");
  });

  test("invalid addresses", () => {
    assertProblems(clusterYaml({ h1addr: "host_with_underscore" }), ['cluster.yaml:18:16 spec.hosts[0].address: "host_with_underscore" is neither an IP address nor a DNS name']);
    assertProblems(clusterYaml({ tail: "      internalAddress: node1.local\n" }), ['cluster.yaml:23:24 spec.hosts[1].internalAddress: "node1.local" is not an IP address (the node\'s IP in the cluster network)']);
    parseClusterText(clusterYaml({ h1addr: "master1.example.internal" }), "cluster.yaml");
  });

  test("invalid extra SANs", () => {
    assertProblems(clusterYaml({ sans: "api.example.internal, not a name" }), ['cluster.yaml:13:38 spec.controlPlane.certSANs[1]: "not a name" is neither an IP address nor a DNS name']);
    parseClusterText(clusterYaml({ sans: '"*.api.example.internal", 10.0.0.1, "fd00::1"' }), "cluster.yaml");
  });

  test("dnsDomain must be a DNS name", () => {
    assertProblems(clusterYaml({ dns: "Cluster..Local" }), [
      'cluster.yaml:10:16 spec.networking.dnsDomain: "Cluster..Local" is not a DNS name (lowercase labels of letters, digits and \'-\', e.g. cluster.local)',
    ]);
  });

  test("node CIDR mask size against the pod subnet", () => {
    assertProblems(clusterYaml({ pod: "10.244.0.0/20", mask: "16" }), [
      "cluster.yaml:11:23 spec.networking.nodeCidrMaskSize: /16 is larger than the pod subnet 10.244.0.0/20: each node's range must fit inside it (use 20 or more)",
    ]);
    assertProblems(clusterYaml({ pod: "10.128.0.0/9", mask: "28" }), [
      "cluster.yaml:11:23 spec.networking.nodeCidrMaskSize: /28 cuts the pod subnet 10.128.0.0/9 into more than 2^16 node ranges, which kube-controller-manager refuses (use 25 or less)",
    ]);
  });

  test("service subnet too large", () => {
    assertProblems(clusterYaml({ svc: "10.64.0.0/11" }), [
      "cluster.yaml:9:20 spec.networking.serviceSubnet: 10.64.0.0/11 is too large: at most 20 host bits (/12 or smaller for IPv4), as kube-apiserver requires",
    ]);
    assertProblems(clusterYaml({ svc: "fd00:96::/100" }), [
      "cluster.yaml:9:20 spec.networking.serviceSubnet: fd00:96::/100 is too large: at most 20 host bits (/108 or smaller for IPv6), as kube-apiserver requires",
    ]);
  });

  test("a default value that conflicts points at the nearest field that is in the file", () => {
    // No podSubnet in the file: the default 10.244.0.0/16 holds the host address.
    const text = clusterYaml({ h2addr: "10.244.1.1" }).replace("    podSubnet: 10.244.0.0/16\n", "    # default pod subnet\n");
    assertProblems(text, ["cluster.yaml:21:16 spec.hosts[1].address: host address 10.244.1.1 is inside the pod subnet 10.244.0.0/16"]);
  });

  test("labels, bastions, secret variable names and extra flags", () => {
    assertProblems(clusterYaml({ tail: "      labels: {\"bad key!\": x, \"Example.com/zone\": a, ok: \"-x\"}\n" }), [
      `cluster.yaml:23:16 spec.hosts[1].labels["bad key!"]: label key "bad key!" is not valid (a name of at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric, with an optional DNS prefix and '/')`,
      'cluster.yaml:23:31 spec.hosts[1].labels["Example.com/zone"]: label key prefix "Example.com" is not a DNS name',
      `cluster.yaml:23:58 spec.hosts[1].labels.ok: label value "-x" is not valid (at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric)`,
    ]);
    parseClusterText(clusterYaml({ tail: "      labels: {topology.kubernetes.io/zone: zone-a, tier: \"\"}\n      ssh: {bastion: \"jump@[fd00::1]:2222\"}\n" }), "cluster.yaml");
    assertProblems(clusterYaml({ tail: "      ssh: {bastion: \"jump@bad_host:22\"}\n" }), [
      'cluster.yaml:23:22 spec.hosts[1].ssh.bastion: "jump@bad_host:22" is not a jump host; write host, user@host or user@host:port',
    ]);
    // A password pasted where the variable name goes is not echoed back.
    const p = problems(clusterYaml({ tail: "  ssh: {passwordEnv: \"hunter2 secret!\"}\n" }));
    assert.deepEqual(p, ["cluster.yaml:23:22 spec.ssh.passwordEnv: must be the NAME of an environment variable (letters, digits and _), not the secret itself; the value is not shown"]);
    assert.ok(!p.join("").includes("hunter2"));
    assertProblems(clusterYaml().replace("    certSANs: [api.example.internal]\n", '    certSANs: [api.example.internal]\n    extraArgs: {apiserver: {"--audit-log-maxage": "30"}}\n'), [
      'cluster.yaml:14:29 spec.controlPlane.extraArgs.apiserver["--audit-log-maxage"]: write the flag without leading dashes ("audit-log-maxage")',
    ]);
  });

  test("YAML anchors and merge keys work, and positions still point into the file", () => {
    const text = clusterYaml({ tail: "    - <<: &w {roles: [worker]}\n      name: node2\n      address: 192.168.99.203\n    - {<<: *w, name: node3, address: 192.168.99.204, bogus: 1}\n" });
    assertProblems(text, ['cluster.yaml:26:54 spec.hosts[3].bogus: unknown field "bogus" (known fields: name, address, internalAddress, roles, ssh, connection, criSocket, labels)']);
    const c = parseClusterText(text.replace(", bogus: 1", ""), "cluster.yaml");
    assert.deepEqual(c.spec.hosts.map((h) => `${h.name}:${h.roles.join("+")}`), ["master1:control-plane", "node1:worker", "node2:worker", "node3:worker"]);
  });

  test("the source name is used as given", () => {
    assert.match(problems(clusterYaml({ h2roles: "master" }), "<stdin>")[0], /^<stdin>:22:15 /);
  });
});

describe("config print-defaults", () => {
  test("the printed file is valid, and equal to the schema defaults plus what the example sets", () => {
    const printed = parseClusterText(defaultsText(), "defaults.yaml");
    const minimal = parseClusterText(stringify(EXAMPLE_SETTINGS), "minimal.yaml");
    assert.deepEqual(printed, minimal);
    assert.equal(printed.spec.hosts.length, 5);
  });

  test("every field of the schema appears in the printed file (set or commented)", () => {
    const text = defaultsText();
    const fields = [
      "kubernetesVersion", "controlPlaneEndpoint", "podSubnet", "serviceSubnet", "dnsDomain", "nodeCidrMaskSize",
      "mode", "certSANs", "extraArgs", "etcd", "apiserver", "controllerManager", "scheduler", "kubelet", "kubeProxy",
      "enabled", "virtualIP", "interface", "haproxyPort", "virtualRouterId", "cgroupDriver", "criSocket",
      "source", "path", "mirror", "keyAlgorithm", "keySize", "certificateValidityDays", "caValidityDays", "renewBeforeDays",
      "firewall", "user", "port", "identityFile", "useAgent", "knownHostsFile", "passphraseEnv", "passwordEnv", "bastion",
      "name", "address", "internalAddress", "roles", "connection", "labels",
    ];
    for (const f of fields) assert.match(text, new RegExp(`^\\s*#?\\s*-?\\s*${f}:`, "m"), `field ${f} missing from print-defaults`);
  });
});

describe("the real CLI", () => {
  const run = (args: string[], input?: string) =>
    spawnSync(process.execPath, [bin, ...args], { input, encoding: "utf8", env: { ...process.env, CI: "true" }, timeout: 30_000 });

  test("config validate -f - reads stdin: valid exits 0, invalid exits 2 naming <stdin>:line:col", () => {
    const ok = run(["config", "validate", "-f", "-"], clusterYaml());
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout, "<stdin>: valid (2 hosts)\n");
    const bad = run(["config", "validate", "-f", "-"], clusterYaml({ h2roles: "master", h1name: "master_1" }));
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /<stdin>:22:15 spec\.hosts\[1\]\.roles\[0\]: "master" is not one of control-plane, worker, etcd/);
    assert.match(bad.stderr, /<stdin>:17:13 spec\.hosts\[0\]\.name: "master_1" must be a DNS-1123 label/);
    assert.equal(bad.stdout, "");
  });

  test("config validate -o json prints one document, valid or not", () => {
    const ok = run(["config", "validate", "-f", "-", "-o", "json"], clusterYaml());
    assert.equal(ok.status, 0);
    assert.deepEqual(JSON.parse(ok.stdout), { source: "<stdin>", valid: true, hosts: 2 });
    const bad = run(["config", "validate", "-f", "-", "-o", "json"], clusterYaml({ h2name: "master1" }));
    assert.equal(bad.status, 2);
    assert.deepEqual(JSON.parse(bad.stdout), {
      source: "<stdin>",
      valid: false,
      problems: ['<stdin>:20:13 spec.hosts[1].name: duplicate host name "master1" (also spec.hosts[0])'],
    });
  });

  test("print-defaults | validate -f - round trip, and view fills the defaults", () => {
    const printed = run(["config", "print-defaults"]);
    assert.equal(printed.status, 0);
    const v = run(["config", "validate", "-f", "-"], printed.stdout);
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout, "<stdin>: valid (5 hosts)\n");
    const dir = mkdtempSync(join(tmpdir(), "kpt-spec-"));
    try {
      const file = join(dir, "cluster.yaml");
      writeFileSync(file, clusterYaml());
      const view = run(["config", "view", "-f", file, "-o", "json"]);
      assert.equal(view.status, 0, view.stderr);
      const c = JSON.parse(view.stdout);
      assert.equal(c.spec.ssh.knownHostsFile, "~/.ssh/known_hosts");
      assert.equal(c.spec.pki.keySize, 2048);
      const yamlView = run(["config", "view", "-f", file]);
      assert.equal(yamlView.status, 0);
      assert.deepEqual(parseClusterText(yamlView.stdout, "view"), c);
      const missing = run(["config", "validate", "-f", join(dir, "nope.yaml")]);
      assert.equal(missing.status, 2);
      assert.match(missing.stderr, /cannot read cluster file .*nope\.yaml: no such file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("--name of a cluster that does not exist: exit 2 naming the directory", () => {
    const home = mkdtempSync(join(tmpdir(), "kpt-home-"));
    try {
      const r = spawnSync(process.execPath, [bin, "config", "validate", "--name", "nosuch"], { encoding: "utf8", env: { ...process.env, KUBEPROV_HOME: home } });
      assert.equal(r.status, 2);
      assert.equal(r.stderr, `error: no cluster named nosuch (looked in ${join(home, "clusters", "nosuch")})\n`);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  test("neither or both of -f and --name: usage error, exit 2", () => {
    assert.equal(run(["config", "validate"]).status, 2);
    const both = run(["config", "validate", "-f", "x.yaml", "--name", "x"]);
    assert.equal(both.status, 2);
    assert.match(both.stderr, /either -f\/--file or --name, not both/);
  });
});

describe("CIDR helpers", () => {
  test("nthAddress gives the kubernetes Service IP and the cluster DNS IP", () => {
    assert.equal(nthAddress("10.96.0.0/12", 1), "10.96.0.1");
    assert.equal(nthAddress("10.96.0.0/12", 10), "10.96.0.10");
    assert.equal(nthAddress("fd00:10:96::/108", 10), "fd00:10:96::a");
    assert.equal(nthAddress("10.0.0.0/30", 3), "10.0.0.3");
    assert.throws(() => nthAddress("10.0.0.0/30", 4), /has no address number 4/);
  });

  test("parsing, containment and overlap for IPv4 and IPv6", () => {
    assert.equal(parseIP("010.0.0.1"), undefined);
    assert.equal(parseIP("1.2.3"), undefined);
    assert.equal(formatIP(parseIP("2001:db8:0:0:1:0:0:1")!), "2001:db8::1:0:0:1");
    assert.equal(formatIP(parseIP("::ffff:10.0.0.1")!), "::ffff:a00:1");
    assert.equal(formatIP(parseIP("::")!), "::");
    assert.equal(parseIP("1::2::3"), undefined);
    assert.equal(parseCIDR("10.0.0.0/8")?.prefix, 8);
    assert.equal(parseCIDR("10.0.0.0/08"), undefined);
    assert.equal(parseCIDR("fd00::/129"), undefined);
    assert.equal(cidrContains("10.244.0.0/16", "10.244.255.255"), true);
    assert.equal(cidrContains("10.244.0.0/16", "10.245.0.0"), false);
    assert.equal(cidrContains("10.244.0.0/16", "fd00::1"), false);
    assert.equal(cidrContains("fd00:10::/32", "fd00:10:ffff::1"), true);
    assert.equal(cidrsOverlap("10.0.0.0/8", "10.96.0.0/12"), true);
    assert.equal(cidrsOverlap("10.96.0.0/12", "10.112.0.0/12"), false);
    assert.equal(cidrsOverlap("0.0.0.0/0", "192.168.0.0/16"), true);
  });

  test("host:port", () => {
    assert.deepEqual(parseHostPort("[fd00::1]:6443"), { host: "fd00::1", port: 6443, kind: "ip" });
    assert.deepEqual(parseHostPort("api.example.internal:443"), { host: "api.example.internal", port: 443, kind: "dns" });
    assert.ok("error" in parseHostPort("host:0"));
    assert.ok("error" in parseHostPort(":6443"));
  });

  test("field paths", () => {
    assert.equal(formatPath(["spec", "hosts", 1, "roles", 0]), "spec.hosts[1].roles[0]");
    assert.equal(formatPath(["spec", "hosts", 0, "labels", "topology.kubernetes.io/zone"]), 'spec.hosts[0].labels["topology.kubernetes.io/zone"]');
    assert.equal(formatPath([]), "(file)");
  });
});
