// The cluster file `up` writes for a driver-made cluster (clusterDir(NAME)/cluster.yaml): the
// machines as hosts (`connection: local` for the machine kubeprov runs on), the cluster's own SSH
// key and known_hosts when any machine is reached over SSH, the cgroup driver the machines suit.
// Pure: machines in, YAML text out. parseClusterText validates it before it is written.
import { stringify } from "yaml";
import { API_VERSION, KIND_CLUSTER, PORT_HAPROXY } from "../constants.js";
import type { ClusterInput } from "../spec/schema.js";
import type { Machine } from "./driver.js";

export interface DriverClusterInput {
  name: string;
  driver: string;
  kubernetesVersion: string;
  machines: Machine[];
  identityFile: string;
  knownHostsFile: string;
  /** Default cgroupfs (node containers and VMs made by a driver). */
  cgroupDriver?: "systemd" | "cgroupfs";
  /** The bundle directory for this version. */
  artifactsDir: string;
  virtualIP?: string;
  subnet?: string;
  /** The machines' interface on the cluster network (default eth0). */
  interface?: string;
  /** The network add-on (default: the schema's). */
  cni?: "flannel" | "bridge" | "none";
  /** flannel's backend (default: the schema's, host-gw). */
  flannelBackend?: "host-gw" | "vxlan";
  /** spec.addons as `kubeprov addons enable|disable` recorded it (default: the schema's). */
  addons?: ClusterInput["spec"]["addons"];
  /** spec.images (the image repository), from `up --image-repository` or as recorded. */
  images?: ClusterInput["spec"]["images"];
  /** spec.registryMirrors, from `up --registry-mirror` or as recorded. */
  registryMirrors?: Record<string, string[]>;
}

export function driverClusterObject(i: DriverClusterInput): ClusterInput {
  const ha = i.virtualIP !== undefined;
  const spec: ClusterInput["spec"] = {
    kubernetesVersion: i.kubernetesVersion,
    ...(i.cni || i.flannelBackend ? { networking: { ...(i.cni ? { cni: i.cni } : {}), ...(i.flannelBackend ? { flannelBackend: i.flannelBackend } : {}) } } : {}),
    ...(ha ? { controlPlaneEndpoint: `${i.virtualIP}:${PORT_HAPROXY}` } : {}),
    ha: ha ? { enabled: true, virtualIP: i.virtualIP, interface: i.interface ?? "eth0", haproxyPort: PORT_HAPROXY } : { enabled: false },
    containerRuntime: { cgroupDriver: i.cgroupDriver ?? "cgroupfs" },
    artifacts: { source: "dir", path: i.artifactsDir },
    // Only machines reached over SSH use the cluster's key; a cluster of local machines has none.
    ...(i.machines.some((m) => m.reach.kind === "ssh")
      ? { ssh: { user: "root", port: 22, identityFile: i.identityFile, knownHostsFile: i.knownHostsFile, useAgent: false } }
      : {}),
    hosts: i.machines.map((m) => ({ name: m.node, address: m.address, roles: [...m.roles], ...(m.reach.kind === "local" ? { connection: "local" as const } : {}) })),
    ...(i.addons ? { addons: i.addons } : {}),
    ...(i.images ? { images: i.images } : {}),
    ...(i.registryMirrors && Object.keys(i.registryMirrors).length ? { registryMirrors: i.registryMirrors } : {}),
  };
  return { apiVersion: API_VERSION, kind: KIND_CLUSTER, metadata: { name: i.name }, spec };
}

export function renderDriverClusterFile(i: DriverClusterInput): string {
  const header =
    `# Written by \`kubeprov up --name ${i.name}\` (driver ${i.driver}${i.subnet ? `, network ${i.subnet}` : ""}).\n` +
    `# \`kubeprov up\` rewrites it; \`kubeprov delete --name ${i.name}\` removes it with the machines.\n`;
  return header + stringify(driverClusterObject(i), { lineWidth: 0 });
}
