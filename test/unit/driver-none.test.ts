// The none driver's pure parts: the node's name and address from this machine, the plan `up` makes
// for it (one node; flags asking for more are exit 2 naming the flag), the cluster file with a
// local host and no SSH settings, and the driver record keeping --address.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { defaultRouteAddress, defaultRouteInterface, NoneDriver, thisNodeName } from "../../provisioner/drivers/none.js";
import { getDriver } from "../../provisioner/drivers/index.js";
import { renderDriverClusterFile } from "../../provisioner/drivers/clusterfile.js";
import { driverRecordFile, resolveClusterDriver, writeDriverRecord } from "../../provisioner/drivers/record.js";
import { parseClusterText } from "../../provisioner/spec/load.js";
import { planUp } from "../../provisioner/cli/commands/up.js";
import { UsageError } from "../../provisioner/errors.js";

let home: string;
before(() => {
  home = mkdtempSync(join(tmpdir(), "kpt-none-unit-"));
  process.env.KUBEPROV_HOME = home;
});
after(() => rmSync(home, { recursive: true, force: true }));

const usage = (re: RegExp) => (e: unknown) => e instanceof UsageError && e.exitCode === 2 && re.test(e.message);

// /proc/net/route as Linux prints it: a default route on eth0 and two bridges.
const ROUTES = [
  "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT",
  "br-1\t0000D50A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",
  "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0",
  "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0",
].join("\n");

const ifaces = {
  lo: [{ address: "127.0.0.1", netmask: "255.0.0.0", family: "IPv4" as const, mac: "00:00:00:00:00:00", internal: true, cidr: "127.0.0.1/8" }],
  eth0: [
    { address: "fe80::1", netmask: "ffff:ffff:ffff:ffff::", family: "IPv6" as const, mac: "02:42:c0:a8:00:02", internal: false, cidr: "fe80::1/64", scopeid: 2 },
    { address: "192.0.2.7", netmask: "255.255.255.0", family: "IPv4" as const, mac: "02:42:c0:a8:00:02", internal: false, cidr: "192.0.2.7/24" },
  ],
};

test("the node's address is the default route's interface's IPv4 address; without one the error says to pass --address", () => {
  assert.equal(defaultRouteInterface(ROUTES), "eth0");
  assert.equal(defaultRouteAddress(ROUTES, ifaces), "192.0.2.7");
  const noDefault = ROUTES.split("\n").filter((l) => !l.includes("010200C0")).join("\n");
  assert.equal(defaultRouteInterface(noDefault), undefined);
  assert.throws(() => defaultRouteAddress(noDefault, ifaces), usage(/no IPv4 default route.*pass --address ADDRESS/));
  // A default route that is down (flags without RTF_UP) is no default route.
  assert.equal(defaultRouteInterface(ROUTES.replace("010200C0\t0003", "010200C0\t0002")), undefined);
  assert.throws(() => defaultRouteAddress(ROUTES, { eth0: [ifaces.eth0[0]] }), usage(/interface eth0 has no IPv4 address: pass --address/));
});

test("the node is named after the hostname (lowercased); a hostname that is no DNS-1123 label is exit 2", () => {
  assert.equal(thisNodeName("Build-7"), "build-7");
  assert.throws(() => thisNodeName("my_host"), usage(/hostname "my_host" is not a DNS-1123 label/));
  assert.throws(() => thisNodeName("host.example.org"), usage(/not a DNS-1123 label/));
});

const base = { name: "kpt-n", nodes: 1, controlPlanes: 1, kubernetesVersion: "v1.37.2", kubernetes: true, driver: "none" };

test("up --driver none plans one node, this machine; flags asking for more machines or machine sizes are exit 2 naming the flag", () => {
  const p = planUp(base, () => "build-7");
  assert.deepEqual(p.machines.machines, [{ node: "build-7", roles: ["control-plane", "worker"] }]);
  assert.equal(p.machines.reserveVirtualIP, false);
  const bad = (o: Record<string, unknown>, re: RegExp) => assert.throws(() => planUp({ ...base, ...o }, () => "build-7"), usage(re));
  bad({ nodes: 2 }, /^--nodes 2: the none driver runs one node, this machine/);
  bad({ controlPlanes: 3 }, /^--control-planes 3: the none driver runs one node/);
  bad({ nodes: 3, controlPlanes: 3 }, /^--nodes 3:/);
  bad({ etcdNodes: 1 }, /^--etcd-nodes 1:/);
  bad({ cpus: 2 }, /^--cpus:/);
  bad({ memory: "2g" }, /^--memory:/);
  bad({ address: "eth0" }, /^--address "eth0": an IPv4 address/);
  assert.throws(() => planUp({ ...base, driver: "docker", address: "192.0.2.7" }), usage(/^--address is for the none driver/));
  assert.deepEqual(planUp({ ...base, address: "192.0.2.7" }, () => "h").machines.machines[0].node, "h");
});

test("the cluster file of a none cluster: the host is local, no SSH settings, the machine's cgroup driver", () => {
  const text = renderDriverClusterFile({
    name: "kpt-n",
    driver: "none",
    kubernetesVersion: "v1.37.2",
    machines: [{ node: "build-7", machine: "build-7", address: "192.0.2.7", roles: ["control-plane", "worker"], state: "running", reach: { kind: "local" } }],
    identityFile: "/unused/id",
    knownHostsFile: "/unused/kh",
    artifactsDir: "/b",
    cgroupDriver: "systemd",
  });
  const c = parseClusterText(text, "cluster.yaml");
  assert.deepEqual(c.spec.hosts.map((h) => [h.name, h.address, h.connection]), [["build-7", "192.0.2.7", "local"]]);
  assert.equal(c.spec.containerRuntime.cgroupDriver, "systemd");
  assert.equal(c.spec.ssh.identityFile, undefined);
  assert.doesNotMatch(text, /\/unused\//);
});

test("the record keeps --address; later commands get the none driver without --driver; node delete is refused", async () => {
  writeDriverRecord("here", { driver: "none", address: "192.0.2.7" });
  assert.deepEqual(JSON.parse(readFileSync(driverRecordFile("here"), "utf8")), { driver: "none", address: "192.0.2.7" });
  assert.deepEqual(resolveClusterDriver("here"), { name: "none", record: { driver: "none", address: "192.0.2.7" }, from: "recorded" });
  assert.throws(() => resolveClusterDriver("here", "docker"), usage(/made with the none driver/));
  const d = getDriver("none");
  assert.ok(d instanceof NoneDriver);
  await assert.rejects(d.deleteMachine("here", "build-7"), usage(/its one node is this machine \(build-7\)/));
  // No cluster file yet: no machine (and nothing is asked of systemd).
  assert.deepEqual(await d.list("here"), []);
});
