// Phase "cluster-ready": `up` and `apply` return once a new pod can resolve names, what a user
// tries first: a CoreDNS replica ready, and kube-proxy ready on every node of the cluster file (its
// rules are what take a pod's DNS query to CoreDNS's Service address; a node that has just turned
// Ready may still be starting it). Without this wait a pod
// created the moment `up` returns can send its first query before kube-proxy has written those
// rules, and the resolver then waits out its 5 s timeout. Bounded; the failure says what is not ready.
import { performance } from "node:perf_hooks";
import { HostError } from "../errors.js";
import type { CheckResult, Host, RunContext, Task } from "../engine/task.js";
import { apiClient, objectPath, type KubeApi, type KubeObject } from "../bootstrap/api.js";
import { kubernetesNodes } from "../plan/topology.js";

export const CLUSTER_READY_TASK = "cluster-ready/dns";
/** How long the wait lasts before it fails (CoreDNS's image is in every node: no pull to wait for). */
export const CLUSTER_READY_MS = 120_000;
const POLL_MS = 250;

type Condition = { type: string; status: string };
type PodObject = KubeObject & { spec?: { nodeName?: string }; status?: { conditions?: Condition[] } };

/** The object's Ready condition is True (a Node, a Pod). */
export const ready = (o: { status?: { conditions?: Condition[] } }) => (o.status?.conditions ?? []).some((c) => c.type === "Ready" && c.status === "True");

/** The API path listing kube-system's pods with a label selector (e.g. "k8s-app=kube-dns"). */
export function kubeSystemPodsPath(selector: string): string {
  return `${objectPath("v1", "Pod", "", "kube-system")}?labelSelector=${encodeURIComponent(selector)}`;
}

/** What a new pod's DNS still lacks on these nodes (empty: nothing). Pure. */
export function dnsNotReady(nodes: string[], proxies: PodObject[], dns: PodObject[]): string[] {
  const missing: string[] = [];
  if (!dns.some(ready)) missing.push("no CoreDNS replica is ready");
  const proxyReadyOn = new Set(proxies.filter(ready).map((p) => p.spec?.nodeName));
  const without = nodes.filter((n) => !proxyReadyOn.has(n));
  if (without.length) missing.push(`kube-proxy is not ready on ${without.join(", ")}`);
  return missing;
}

async function whatIsMissing(api: KubeApi, ctx: RunContext): Promise<string[]> {
  const [proxies, dns] = await Promise.all([api.list<PodObject>(kubeSystemPodsPath("k8s-app=kube-proxy")), api.list<PodObject>(kubeSystemPodsPath("k8s-app=kube-dns"))]);
  return dnsNotReady(kubernetesNodes(ctx).map((h) => h.name), proxies, dns);
}

export function clusterReadyTask(opts: { hosts: (ctx: RunContext) => Host[]; after: string[] }): Task {
  return {
    name: CLUSTER_READY_TASK,
    phase: "cluster-ready",
    description: "wait until a new pod can resolve names: a CoreDNS replica ready, kube-proxy ready on every node (bounded)",
    waitsFor: "CoreDNS and kube-proxy (the controller manager creating their pods)",
    // With cni "none" no pod gets a network until the user installs one: nothing to wait for.
    hosts: (ctx) => (ctx.cluster.spec.networking.cni === "none" ? [] : opts.hosts(ctx)),
    after: opts.after,
    checkAhead: true,
    async check(_host, ctx): Promise<CheckResult> {
      const missing = await whatIsMissing(await apiClient(ctx), ctx);
      return missing.length ? { needed: true, reason: `wait: ${missing.join("; ")}` } : { needed: false, reason: "CoreDNS ready, kube-proxy ready on every node" };
    },
    async apply(host, ctx) {
      const started = performance.now();
      const api = await apiClient(ctx);
      for (;;) {
        const missing = await whatIsMissing(api, ctx);
        const s = ((performance.now() - started) / 1000).toFixed(1);
        if (!missing.length) return { detail: `a new pod can resolve names after ${s} s` };
        if (performance.now() - started > CLUSTER_READY_MS)
          throw new HostError(host.name, CLUSTER_READY_TASK, `after ${s} s: ${missing.join("; ")}`, "kubectl -n kube-system get pods -o wide; kubectl -n kube-system describe pod -l k8s-app=kube-dns");
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    },
  };
}
