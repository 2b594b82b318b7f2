// Drivers by name. A driver creates, starts, stops and deletes machines; it knows nothing about Kubernetes.
import { UsageError } from "../errors.js";
import type { Cluster } from "../spec/schema.js";
import type { Driver } from "./driver.js";
import { DockerDriver, type DockerDriverOptions } from "./docker/driver.js";
import { NoneDriver } from "./none.js";
import { SshDriver } from "./ssh.js";
import { VirtualBoxDriver } from "./virtualbox/index.js";

export const DRIVERS = ["docker", "virtualbox", "none", "ssh"] as const;
export type DriverName = (typeof DRIVERS)[number];

export interface DriverOptions extends DockerDriverOptions {
  /** For the ssh driver: the cluster file whose hosts are the machines. */
  cluster?: Cluster;
  /** For the virtualbox driver: the OVA to import when a VM must be created. */
  vboxImage?: string;
  /** For the none driver: the node's address (default: the default route's interface's). */
  address?: string;
}

export function getDriver(name: string, opts: DriverOptions = {}): Driver {
  switch (name) {
    case "docker":
      return new DockerDriver(opts);
    case "virtualbox":
      return new VirtualBoxDriver({ log: opts.log, image: opts.vboxImage });
    case "none":
      return new NoneDriver({ log: opts.log, address: opts.address });
    case "ssh":
      if (!opts.cluster) throw new UsageError("the ssh driver works on a cluster file's hosts: give -f FILE");
      return new SshDriver(opts.cluster);
    default:
      throw new UsageError(`unknown driver ${JSON.stringify(name)}: one of ${DRIVERS.join(", ")}`);
  }
}

export { DockerDriver, NoneDriver, SshDriver, VirtualBoxDriver };
