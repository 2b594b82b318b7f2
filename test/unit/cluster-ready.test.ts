// The cluster-ready wait: what a new pod needs before its DNS query can work, judged from the node, kube-proxy and CoreDNS lists.
import { test } from "node:test";
import assert from "node:assert/strict";
import { dnsNotReady } from "../../provisioner/tasks/cluster-ready.js";

const cond = (ok: boolean) => ({ conditions: [{ type: "Ready", status: ok ? "True" : "False" }] });
const node = (name: string, ok = true) => ({ apiVersion: "v1", kind: "Node", metadata: { name }, status: cond(ok) });
const pod = (name: string, nodeName: string, ok = true) => ({ apiVersion: "v1", kind: "Pod", metadata: { name, namespace: "kube-system" }, spec: { nodeName }, status: cond(ok) });

test("dnsNotReady: ready when a CoreDNS replica and every Ready node's kube-proxy are ready", () => {
  assert.deepEqual(dnsNotReady([node("a"), node("b")], [pod("p1", "a"), pod("p2", "b")], [pod("d1", "a", false), pod("d2", "b")]), []);
});

test("dnsNotReady: names what is missing; a NotReady node's kube-proxy is not waited for", () => {
  assert.deepEqual(dnsNotReady([node("a"), node("b"), node("c", false)], [pod("p1", "a", false)], []), [
    "no CoreDNS replica is ready",
    "kube-proxy is not ready on a, b",
  ]);
  assert.deepEqual(dnsNotReady([node("a")], [], [pod("d", "a")]), ["kube-proxy is not ready on a"]);
});
