// kubeprov stop|start --name NAME [--node N]: a local cluster's machines stopped and started again,
// like `minikube stop|start`. start returns once the cluster is back, what a user checks: the API
// server answers, every node is Ready and CoreDNS is ready; otherwise it says what is not (exit 1).
import type { Command } from "commander";
import { RuntimeFailure, UsageError } from "../../errors.js";
import { clusterDriver } from "../../drivers/record.js";
import { loadTarget } from "../target.js";
import { parsePositiveInt } from "../options.js";
import { closeHosts, connectHosts } from "../../engine/hosts.js";
import { createRunContext } from "../../engine/context.js";
import { MemoryReporter } from "../../events.js";
import { apiClient, closeApiClients, objectPath, type KubeObject } from "../../bootstrap/api.js";
import type { Cluster } from "../../spec/schema.js";
import { stopLeaders } from "../../lifecycle/graceful-stop.js";
import { isEtcdHost } from "../../plan/topology.js";
import { DNS1123_LABEL } from "../../constants.js";
import { kubeSystemPodsPath, ready as isReady } from "../../tasks/cluster-ready.js";

/** How long `start` waits for the cluster to be back (a node's kubelet needs the most of it). */
export const START_WAIT_S = 300;

interface LifecycleOptions {
  name: string;
  node?: string;
  driver?: string;
  wait: number;
}

type NodeObject = KubeObject & { status?: { conditions?: Array<{ type: string; status: string; lastHeartbeatTime?: string }> } };
type PodObject = KubeObject & {
  status?: { conditions?: Array<{ type: string; status: string }>; containerStatuses?: Array<{ state?: { running?: { startedAt?: string } } }> };
};

/**
 * What is not back yet: the API server, nodes not Ready, CoreDNS not ready (empty: all back). With
 * `since`, status written before then does not count (it may be from before the stop): a node's
 * Ready must have a heartbeat since, a CoreDNS pod a container started since.
 */
export async function clusterNotBack(cluster: Cluster, source: string, since?: Date): Promise<string[]> {
  const hosts = await connectHosts(cluster, { acceptNewHostKeys: false });
  const ctx = createRunContext({ cluster, source, hosts, reporter: new MemoryReporter() });
  const fresh = (t: string | undefined) => !since || (t !== undefined && Date.parse(t) >= since.getTime() - 1000);
  try {
    const api = await apiClient(ctx);
    const nodes = await api.list<NodeObject>(objectPath("v1", "Node", ""));
    const ready = new Set(
      nodes.filter((n) => n.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True" && fresh(c.lastHeartbeatTime))).map((n) => n.metadata.name),
    );
    // etcd hosts (role etcd) are no Kubernetes nodes: they have no Node to be Ready.
    const missing = cluster.spec.hosts.filter((h) => !isEtcdHost(h) && !ready.has(h.name)).map((h) => `node ${h.name} not Ready`);
    const pods = await api.list<PodObject>(kubeSystemPodsPath("k8s-app=kube-dns"));
    const dnsReady = pods.some((p) => isReady(p) && (p.status?.containerStatuses ?? []).some((c) => fresh(c.state?.running?.startedAt)));
    if (!dnsReady) missing.push("CoreDNS not ready");
    return missing;
  } catch (e) {
    return [`the API server does not answer (${(e as Error).message.split("\n")[0]})`];
  } finally {
    await closeApiClients(ctx);
    await closeHosts(hosts);
  }
}

function common(cmd: Command): Command {
  return cmd
    .requiredOption("--name <name>", "cluster name (made by `kubeprov up`)")
    .option("--node <node>", "only this node")
    .option("--driver <driver>", "machine driver (default: the one recorded when `up` made the cluster)");
}

async function machinesOf(o: LifecycleOptions) {
  if (!DNS1123_LABEL.test(o.name)) throw new UsageError(`--name ${JSON.stringify(o.name)}: a cluster name is a DNS-1123 label`);
  const driver = clusterDriver(o.name, o.driver, (m) => process.stderr.write(`${m}\n`));
  await driver.preflight();
  const machines = await driver.list(o.name);
  if (!machines.length) throw new UsageError(`no cluster named ${o.name} on the ${driver.name} driver`);
  if (o.node && !machines.some((m) => m.node === o.node)) throw new UsageError(`--node ${o.node}: not a node of ${o.name} (${machines.map((m) => m.node).join(", ")})`);
  return { driver, machines };
}

export function register(program: Command): void {
  common(program.command("stop").description("stop a local cluster's machines (or one node); `start` brings them back")).action(async (o: LifecycleOptions) => {
    const { driver, machines } = await machinesOf(o);
    const t0 = Date.now();
    // Before the machines stop: the kubelet, kube-scheduler and kube-controller-manager of the
    // running control planes stopped gracefully and their leases released, so that `start` does
    // not wait out the old leases (lifecycle/graceful-stop.ts). Best effort: the stop goes on.
    const running = machines.filter((m) => m.state === "running" && (!o.node || m.node === o.node)).map((m) => m.node);
    const target = running.length ? await loadTarget({ name: o.name }).catch(() => undefined) : undefined;
    if (target) {
      const g = await stopLeaders(target.cluster, target.source, running);
      for (const w of g.warnings) process.stderr.write(`warning: ${w}\n`);
      if (g.stopped.length)
        process.stderr.write(`stopped the kubelet and leader components on ${g.stopped.join(", ")}${g.released.length ? `; released lease ${g.released.join(", ")}` : ""} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
    }
    await driver.stop(o.name, o.node);
    const n = o.node ? 1 : machines.length;
    process.stderr.write(`stopped ${n} node${n === 1 ? "" : "s"} of ${o.name} in ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  });
  common(program.command("start").description("start a stopped local cluster (or one node) and wait until the API, every node and CoreDNS are back"))
    .option("--wait <seconds>", "how long to wait for the cluster to be back", parsePositiveInt, START_WAIT_S)
    .action(async (o: LifecycleOptions) => {
      const { driver, machines } = await machinesOf(o);
      const { cluster, source } = await loadTarget({ name: o.name });
      const t0 = Date.now();
      const before = machines.filter((m) => m.state === "running").map((m) => m.node);
      await driver.start(o.name, o.node);
      // Status from before the start does not count when every node was down (all of it is old).
      const since = before.length === 0 ? new Date(t0) : undefined;
      const started = Date.now();
      process.stderr.write(`machines running after ${((started - t0) / 1000).toFixed(1)} s; waiting for the API server, the nodes and CoreDNS\n`);
      let missing: string[] = [];
      while (Date.now() - started < o.wait * 1000) {
        missing = await clusterNotBack(cluster, source, since);
        if (!missing.length) {
          process.stderr.write(`cluster ${o.name} is back: API, ${cluster.spec.hosts.filter((h) => !isEtcdHost(h)).length} node(s) Ready, CoreDNS ready, ${((Date.now() - t0) / 1000).toFixed(1)} s after start\n`);
          return;
        }
        await new Promise((r) => setTimeout(r, 2000));
      }
      throw new RuntimeFailure(`cluster ${o.name} is not back after ${o.wait} s: ${missing.join("; ")}`);
    });
}
