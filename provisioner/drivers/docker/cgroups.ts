// The cgroups a deleted node container leaves on the Docker host. Node containers share the host's
// cgroup namespace, so each node's kubelet makes its pods' cgroups under its own root in the host's
// hierarchies (KUBELET_CGROUP_PARENT/<cluster>/<node>); removing the container kills the processes
// but leaves every directory behind. They pile up with each deleted cluster (this machine had
// about 1,800 after a few days of tests), and every later kubelet's cAdvisor walks all of them
// before it starts a pod: a node's first pod came about 5.5 s after the kubelet started with
// them there. Only empty cgroups can be removed (rmdir fails on one with processes or children),
// so a running cluster's cgroups are never touched; the caller removes the containers first.
import { lstatSync, readdirSync, rmdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { KUBELET_CGROUP_PARENT } from "../../constants.js";

const CGROUP_FS = "/sys/fs/cgroup";

/** The cgroup hierarchies mounted under `fsRoot`: the one v2 tree, or each v1 controller's (not the cpu,cpuacct style aliases). */
export function cgroupHierarchies(fsRoot = CGROUP_FS): string[] {
  if (existsSync(join(fsRoot, "cgroup.controllers"))) return [fsRoot];
  let entries: string[];
  try {
    entries = readdirSync(fsRoot);
  } catch {
    return [];
  }
  return entries
    .map((e) => join(fsRoot, e))
    .filter((d) => {
      try {
        return !lstatSync(d).isSymbolicLink() && existsSync(join(d, "cgroup.procs"));
      } catch {
        return false;
      }
    });
}

/** rmdir of `dir` and everything under it, deepest first; what cannot go (busy, not ours) stays. Returns how many went. */
function removeTree(dir: string): number {
  let removed = 0;
  let children: string[] = [];
  try {
    children = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => join(dir, e.name));
  } catch {
    return 0;
  }
  for (const c of children) removed += removeTree(c);
  try {
    rmdirSync(dir);
    removed++;
  } catch {
    /* still has processes or children, or no permission: left as it is */
  }
  return removed;
}

/**
 * Removes the empty cgroups of `cluster` (or of one node of it) from every hierarchy, then the
 * cluster's own directory and the common parent when nothing is left in them. Returns the number of cgroups removed.
 */
export function removeNodeCgroups(cluster: string, node?: string, fsRoot = CGROUP_FS): number {
  let removed = 0;
  for (const h of cgroupHierarchies(fsRoot)) {
    const clusterDir = join(h, KUBELET_CGROUP_PARENT, cluster);
    if (!existsSync(clusterDir)) continue;
    if (node) {
      removed += removeTree(join(clusterDir, node));
      try {
        rmdirSync(clusterDir);
        removed++;
      } catch {
        /* other nodes of the cluster are still there */
      }
    } else {
      removed += removeTree(clusterDir);
    }
    try {
      // The parent of every cluster's roots, when this was the last cluster on the machine.
      rmdirSync(join(h, KUBELET_CGROUP_PARENT));
      removed++;
    } catch {
      /* other clusters' cgroups are in it */
    }
  }
  return removed;
}
