// The docker driver's pure planning: node names, subnets, addresses, docker run arguments, memory sizes.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  assignAddresses,
  dockerRunArgs,
  freeSubnets,
  hostAddress,
  overlaps,
  parseCidr,
  parseMemory,
  planNodes,
  virtualIPAddress,
  MAX_NODES,
} from "../../provisioner/drivers/docker/plan.js";
import { nodeOrder } from "../../provisioner/drivers/docker/driver.js";

test("planNodes: kind-like names, first M are control planes, a lone node is both roles", () => {
  assert.deepEqual(planNodes("demo", 1, 1), [{ node: "demo-control-plane", roles: ["control-plane", "worker"] }]);
  assert.deepEqual(
    planNodes("demo", 5, 3).map((m) => [m.node, m.roles.join(",")]),
    [
      ["demo-control-plane", "control-plane"],
      ["demo-control-plane2", "control-plane"],
      ["demo-control-plane3", "control-plane"],
      ["demo-worker", "worker"],
      ["demo-worker2", "worker"],
    ],
  );
});

test("freeSubnets: stays inside 10.213.0.0/16 and skips docker networks and host routes", () => {
  const free = freeSubnets(["172.17.0.0/16", "10.213.0.0/24", "10.213.2.0/23", "10.213.5.7", "0.0.0.0/0", "fe80::/64"]);
  assert.equal(free[0], "10.213.1.0/24");
  assert.ok(!free.includes("10.213.2.0/24"));
  assert.ok(!free.includes("10.213.3.0/24"));
  assert.ok(!free.includes("10.213.5.0/24"), "a host route to one address inside a /24 makes it used");
  assert.ok(free.includes("10.213.4.0/24"));
  assert.equal(free.length, 256 - 4); // .0, .2, .3 and .5 are used
  for (const s of free) assert.match(s, /^10\.213\.\d+\.0\/24$/);
  // A route covering the whole pool leaves nothing.
  assert.deepEqual(freeSubnets(["10.0.0.0/8"]), []);
});

test("CIDR helpers", () => {
  assert.deepEqual(parseCidr("10.213.4.9/24"), parseCidr("10.213.4.0/24"));
  assert.equal(parseCidr("nonsense"), undefined);
  assert.equal(parseCidr("2001:db8::/32"), undefined);
  assert.ok(overlaps(parseCidr("10.0.0.0/8")!, parseCidr("10.213.7.0/24")!));
  assert.ok(!overlaps(parseCidr("10.213.6.0/24")!, parseCidr("10.213.7.0/24")!));
  assert.equal(hostAddress("10.213.7.0/24", 10), "10.213.7.10");
  assert.equal(virtualIPAddress("10.213.7.0/24"), "10.213.7.100");
  assert.throws(() => hostAddress("10.213.7.0/24", 255));
});

test("assignAddresses: .10, .11, ... kept across runs; a taken address moves the newcomer, never the VIP", () => {
  const s = "10.213.9.0/24";
  const first = assignAddresses(s, ["a", "b", "c"], new Map());
  assert.deepEqual([...first.values()], ["10.213.9.10", "10.213.9.11", "10.213.9.12"]);
  // b exists with .10 (e.g. made by an earlier plan): a takes the next free one.
  const again = assignAddresses(s, ["a", "b"], new Map([["b", "10.213.9.10"]]));
  assert.equal(again.get("b"), "10.213.9.10");
  assert.equal(again.get("a"), "10.213.9.11");
  const many = assignAddresses(s, Array.from({ length: MAX_NODES }, (_, i) => `n${i}`), new Map());
  assert.ok(![...many.values()].includes(virtualIPAddress(s)));
  assert.throws(() => assignAddresses(s, Array.from({ length: MAX_NODES + 1 }, (_, i) => `n${i}`), new Map()), /no free node address/);
});

test("dockerRunArgs: the flags checked on this machine, no --privileged, limits when given", () => {
  const args = dockerRunArgs({
    cluster: "demo",
    node: "demo-worker",
    roles: ["worker"],
    address: "10.213.1.11",
    network: "kubeprov-demo",
    image: "kubeprov/node:abc",
    volume: "demo-worker-containerd",
    cpus: 1.5,
    memory: 2 * 1024 ** 3,
  });
  const joined = args.join(" ");
  assert.ok(!args.includes("--privileged"));
  for (const want of [
    "--name demo-worker",
    "--hostname demo-worker",
    "--label io.kubeprov.cluster=demo",
    "--label io.kubeprov.node=demo-worker",
    "--label io.kubeprov.role=worker",
    "--network kubeprov-demo",
    "--ip 10.213.1.11",
    "--restart unless-stopped",
    "--cgroupns=host",
    "--volume /sys/fs/cgroup:/sys/fs/cgroup:rw",
    "--tmpfs /run",
    "--tmpfs /run/lock",
    "--mount type=volume,src=demo-worker-containerd,dst=/var/lib/containerd,volume-label=io.kubeprov.cluster=demo,volume-label=io.kubeprov.node=demo-worker",
    "--cap-add ALL",
    "--cap-drop SYS_RESOURCE",
    "--cap-drop SYS_MODULE",
    "--cap-drop SYS_TIME",
    "--cap-drop SYS_BOOT",
    "--stop-signal SIGRTMIN+3",
    "--security-opt seccomp=unconfined",
    "--security-opt apparmor=unconfined",
    "--device-cgroup-rule a *:* rwm",
    "--cpus 1.5",
    "--memory 2147483648b",
  ])
    assert.ok(joined.includes(want), `missing ${want}`);
  assert.deepEqual(args.slice(-2), ["kubeprov/node:abc", "/sbin/init"]);
  const noLimits = dockerRunArgs({ cluster: "d", node: "d-control-plane", roles: ["control-plane"], address: "10.213.1.10", network: "n", image: "i", volume: "v" });
  assert.ok(!noLimits.includes("--cpus") && !noLimits.includes("--memory"));
});

test("parseMemory", () => {
  assert.equal(parseMemory("2g"), 2 * 1024 ** 3);
  assert.equal(parseMemory("512m"), 512 * 1024 ** 2);
  assert.equal(parseMemory("1.5GiB"), 1.5 * 1024 ** 3);
  assert.equal(parseMemory("1024"), 1024);
  assert.equal(parseMemory("lots"), undefined);
  assert.equal(parseMemory("0"), undefined);
});

test("nodeOrder: control planes first, numeric suffixes in order", () => {
  const names = ["d-worker10", "d-worker2", "d-control-plane2", "d-worker", "d-control-plane"];
  const sorted = names
    .map((n) => ({ node: n, roles: n.includes("control") ? (["control-plane"] as const) : (["worker"] as const) }))
    .map((m) => ({ node: m.node, roles: [...m.roles] }))
    .sort(nodeOrder)
    .map((m) => m.node);
  assert.deepEqual(sorted, ["d-control-plane", "d-control-plane2", "d-worker", "d-worker2", "d-worker10"]);
});
