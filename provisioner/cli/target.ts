// Which cluster a command works on: -f FILE (or -f - for stdin), or --name NAME for a cluster a
// driver made (its cluster.yaml lives in clusterDir(NAME)). Exactly one of them.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { ConfigError, UsageError } from "../errors.js";
import { clusterDir } from "../paths.js";
import { parseClusterText, readClusterText } from "../spec/load.js";
import type { Cluster } from "../spec/schema.js";

export const CLUSTER_FILE_NAME = "cluster.yaml";

/** The cluster file of a driver-made cluster. */
export function namedClusterFile(name: string): string {
  return join(clusterDir(name), CLUSTER_FILE_NAME);
}

export async function loadTarget(opts: { file?: string; name?: string }): Promise<{ cluster: Cluster; source: string }> {
  const hasFile = opts.file !== undefined && opts.file !== "";
  const hasName = opts.name !== undefined && opts.name !== "";
  if (hasFile === hasName)
    throw new UsageError(hasFile ? "give either -f/--file or --name, not both" : "which cluster? give -f/--file FILE (a cluster file, - for stdin) or --name NAME (a cluster made by `kubeprov up`)");
  if (hasFile) {
    const source = opts.file === "-" ? "<stdin>" : opts.file!;
    return { cluster: parseClusterText(await readClusterText(opts.file!), source), source };
  }
  const name = opts.name!;
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(name))
    throw new UsageError(`--name ${JSON.stringify(name)}: a cluster name is a DNS-1123 label (lowercase letters, digits and '-')`);
  const file = namedClusterFile(name);
  if (!existsSync(file)) throw new ConfigError(`no cluster named ${name} (looked in ${clusterDir(name)})`);
  return { cluster: parseClusterText(await readClusterText(file), file), source: file };
}
