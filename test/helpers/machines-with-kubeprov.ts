// Machines that run kubeprov themselves (the none driver, a join run on the joining machine):
// node containers made with the docker driver's own plan and flags (systemd, containerd, the
// fix-ups a kubelet needs in a container), with this machine's `node` binary, the compiled tree,
// node_modules, templates and the bundle bind-mounted read-only, and kubeprov run inside them.
import { realpathSync } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { DockerDriver } from "../../provisioner/drivers/docker/driver.js";
import { planNodes } from "../../provisioner/drivers/docker/plan.js";
import { cacheDir } from "../../provisioner/paths.js";
import { ROOT, type Run } from "./cluster-e2e.js";

/** Where kubeprov is inside the machines. */
export const KP = "/opt/kubeprov";

/** `nodes` machines (`controlPlanes` of them named as control planes) of the docker-driver cluster `cluster`, kubeprov mounted. */
export async function provisionMachinesWithKubeprov(cluster: string, nodes: number, controlPlanes: number): Promise<void> {
  const ro = (hostPath: string, machinePath: string) => ({ hostPath, machinePath, readOnly: true });
  await new DockerDriver().provision({
    cluster,
    machines: planNodes(cluster, nodes, controlPlanes),
    reserveVirtualIP: false,
    sharedDirectories: [
      // The node image has node's libraries (libstdc++, libgcc_s, glibc of the same Debian release).
      ro(process.execPath, "/usr/local/bin/node"),
      ro(join(ROOT, "bin"), `${KP}/bin`),
      ro(join(ROOT, "dist"), `${KP}/dist`),
      ro(realpathSync(join(ROOT, "node_modules")), `${KP}/node_modules`),
      ro(join(ROOT, "templates"), `${KP}/templates`),
      ro(join(ROOT, "package.json"), `${KP}/package.json`),
      ro(join(cacheDir(), "bundle"), "/root/.cache/kubeprov/bundle"),
    ],
  });
}

/** kubeprov on `machine`, as root there, with its own state directory; `env` carries secrets (never argv). */
export async function kubeprovInside(machine: string, args: string[], env: Record<string, string> = {}, timeoutMs = 6 * 60_000): Promise<Run> {
  const t0 = Date.now();
  const envArgs = Object.entries({ CI: "1", KUBEPROV_HOME: "/root/kubeprov", ...env }).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
  const r = await execa("docker", ["exec", ...envArgs, machine, "node", `${KP}/bin/kubeprov.js`, ...args], { reject: false, timeout: timeoutMs });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), ms: Date.now() - t0 };
}
