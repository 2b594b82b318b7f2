// The cluster-ready wait: what a new pod needs before its DNS query can work, judged from the kube-proxy and CoreDNS pods on the cluster file's nodes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { clusterReadyTask, dnsNotReady } from "../../provisioner/tasks/cluster-ready.js";
import type { Host, RunContext } from "../../provisioner/engine/task.js";

const cond = (ok: boolean) => ({ conditions: [{ type: "Ready", status: ok ? "True" : "False" }] });
const pod = (name: string, nodeName: string, ok = true) => ({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "kube-system" }, spec: { nodeName }, status: cond(ok) });

test("dnsNotReady: ready when a CoreDNS replica and every node's kube-proxy are ready", () => {
  assert.deepEqual(dnsNotReady(["a", "b"], [pod("p1", "a"), pod("p2", "b"), pod("p3", "gone", false)], [pod("d1", "a", false), pod("d2", "b")]), []);
});

test("dnsNotReady: names what is missing, node by node", () => {
  assert.deepEqual(dnsNotReady(["a", "b", "c"], [pod("p1", "a", false), pod("p3", "c")], []), ["no CoreDNS replica is ready", "kube-proxy is not ready on a, b"]);
  assert.deepEqual(dnsNotReady(["a"], [], [pod("d", "a")]), ["kube-proxy is not ready on a"]);
});

test("cluster-ready waits for nothing with cni none (no pod has a network until the user installs one)", () => {
  const host = { name: "cp" } as Host;
  const task = clusterReadyTask({ hosts: () => [host], after: [] });
  const ctx = (cni: string) => ({ cluster: { spec: { networking: { cni } } } }) as unknown as RunContext;
  assert.deepEqual(task.hosts(ctx("none")), []);
  assert.deepEqual(task.hosts(ctx("flannel")), [host]);
  assert.deepEqual(task.hosts(ctx("manifest")), [host]);
});
