import { test } from "node:test";
import assert from "node:assert/strict";
import { clusterState, nodeState, stateIsFailure } from "../../provisioner/status/state.js";
import type { HostStatus } from "../../provisioner/status/probes.js";
import { parseKubernetesProbe } from "../../provisioner/status/kubernetes.js";

const ok = (endpoint: string) => ({ health: "ok", endpoint });
const base: HostStatus = { name: "cp1", address: "10.213.0.2", reachable: true };
const healthy: HostStatus = {
  ...base,
  components: { kubelet: ok("k"), etcd: ok("e"), "kube-apiserver": ok("a"), "kube-controller-manager": ok("c"), "kube-scheduler": ok("s") },
};

test("nodeState: the driver's stopped or missing machine wins; unreachable; nothing installed", () => {
  assert.deepEqual(nodeState({ ...base, reachable: false, error: "machine stopped" }, "stopped"), { state: "Stopped", reasons: ["machine stopped"] });
  assert.equal(nodeState({ ...base, reachable: false }, "missing").state, "Missing");
  assert.deepEqual(nodeState({ ...base, reachable: false, error: "ECONNREFUSED" }), { state: "Unreachable", reasons: ["ECONNREFUSED"] });
  assert.equal(nodeState(base).state, "NotInstalled");
});

test("nodeState: Running when every component answers ok, Degraded naming each one that does not", () => {
  assert.deepEqual(nodeState(healthy, "running"), { state: "Running", reasons: [] });
  const sick = { ...healthy, components: { ...(healthy.components as object), "kube-scheduler": { health: "no answer", endpoint: "s" } } };
  assert.deepEqual(nodeState(sick), { state: "Degraded", reasons: ["kube-scheduler: no answer"] });
  assert.deepEqual(nodeState({ ...base, components: { error: "curl is not installed" } }), { state: "Degraded", reasons: ["curl is not installed"] });
  // HA: haproxy not answering on its admin socket is a degraded control plane.
  const ha = { ...healthy, ha: { virtualIP: "10.213.0.250", holdsVIP: false, backends: [] } };
  assert.deepEqual(nodeState(ha), { state: "Degraded", reasons: ["haproxy: not answering"] });
  assert.equal(nodeState({ ...healthy, ha: { virtualIP: "10.213.0.250", holdsVIP: true, backends: [{ name: "cp1", up: true }] } }).state, "Running");
});

test("clusterState: all Running, all Stopped, nothing installed, else Degraded; only Degraded and Stopped fail", () => {
  assert.equal(clusterState(["Running", "Running"]), "Running");
  assert.equal(clusterState(["Stopped", "Stopped"]), "Stopped");
  assert.equal(clusterState(["NotInstalled", "NotInstalled"]), "NotInstalled");
  assert.equal(clusterState(["Running", "Stopped"]), "Degraded");
  assert.equal(clusterState(["Running", "Unreachable"]), "Degraded");
  assert.equal(clusterState(["Running", "NotInstalled"]), "Degraded");
  assert.deepEqual(["Running", "NotInstalled", "Degraded", "Stopped"].map((s) => stateIsFailure(s as never)), [false, false, true, true]);
});

test("parseKubernetesProbe: etcd members with the leader the local member names", () => {
  const out = [
    "kubelet=ok",
    "etcd={\"health\":\"true\",\"reason\":\"\"}",
    "kube-apiserver=ok",
    "kube-controller-manager=ok",
    "kube-scheduler=ok",
    'etcd.members={"header":{},"members":[{"ID":"111","name":"cp1","peerURLs":["https://10.213.0.2:2380"],"clientURLs":["https://10.213.0.2:2379"]},{"ID":"222","name":"cp2","peerURLs":["https://10.213.0.3:2380"],"clientURLs":["https://10.213.0.3:2379"]}]}',
    'etcd.status={"header":{"member_id":"111"},"version":"3.7.0","leader":"222"}',
  ].join("\n");
  const s = parseKubernetesProbe(out, true);
  assert.deepEqual((s.etcdMembers as Array<{ name: string; leader?: boolean }>).map((m) => [m.name, m.leader ?? false]), [["cp1", false], ["cp2", true]]);
  assert.equal(nodeState({ name: "cp1", address: "10.213.0.2", reachable: true, ...s }).state, "Running");
});
