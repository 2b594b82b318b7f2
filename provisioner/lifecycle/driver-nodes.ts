// Adding and removing nodes of a cluster a driver made: one path for `node delete`, `node add` and
// `up` with new counts. Removal takes the node out of the cluster first (remove-node.ts), then
// deletes the machine, rewrites the cluster file without it, and converges the control planes'
// haproxy and keepalived to the control planes that are left.
import { existsSync, readFileSync } from "node:fs";
import type { Driver } from "../drivers/driver.js";
import { clusterFiles, writeFileAtomic } from "../drivers/localfiles.js";
import { parseClusterText } from "../spec/load.js";
import { runPipeline } from "../engine/pipeline.js";
import { factsTask } from "../tasks/facts.js";
import { clusterTasks } from "../plan/cluster.js";
import { clusterTextWithoutHost, removeNodeFromCluster, type RemoveNodeOptions } from "./remove-node.js";

export async function removeDriverNode(cluster: string, node: string, driver: Driver, opts: RemoveNodeOptions & { kubernetes: boolean }): Promise<void> {
  const file = clusterFiles(cluster).clusterFile;
  const text = existsSync(file) ? readFileSync(file, "utf8") : undefined;
  const parsed = text ? parseClusterText(text, file) : undefined;
  const wasControlPlane = parsed?.spec.hosts.find((h) => h.name === node)?.roles.includes("control-plane") ?? false;
  const joined = opts.kubernetes && parsed?.spec.hosts.some((h) => h.name === node);
  if (joined) await removeNodeFromCluster(parsed!, file, node, opts);
  await driver.deleteMachine(cluster, node);
  opts.log(`${node}: machine deleted`);
  if (!text || !parsed) return;
  const rest = clusterTextWithoutHost(text, node);
  writeFileAtomic(file, rest, 0o600);
  const restCluster = parseClusterText(rest, file);
  // haproxy's backends and keepalived's peers are rendered from the control planes of the file.
  if (joined && wasControlPlane && restCluster.spec.ha.enabled) {
    await runPipeline({ cluster: restCluster, source: file, tasks: clusterTasks("all"), facts: factsTask, onlyPhases: ["ha"], output: "text", acceptNewHostKeys: false });
  }
}
