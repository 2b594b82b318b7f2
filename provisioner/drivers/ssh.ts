// The ssh driver: bring your own hosts. The machines are the cluster file's hosts; kubeprov does
// not create, start, stop or delete them. provision() only checks that each host's SSH server
// answers (a read-only check) and reports the hosts as machines.
import { createConnection } from "node:net";
import { HostError, UsageError } from "../errors.js";
import { expandHome } from "../paths.js";
import type { Cluster } from "../spec/schema.js";
import type { ClusterMachinesPlan, Driver, Machine, ProvisionResult } from "./driver.js";

export class SshDriver implements Driver {
  readonly name = "ssh";
  constructor(private readonly cluster: Cluster) {}

  async preflight(): Promise<void> {}

  private machines(): Machine[] {
    const s = this.cluster.spec.ssh;
    return this.cluster.spec.hosts.map((h): Machine => ({
      node: h.name,
      machine: h.name,
      address: h.internalAddress ?? h.address,
      roles: [...h.roles],
      state: "running",
      reach:
        h.connection === "local"
          ? { kind: "local" }
          : {
              kind: "ssh",
              host: h.address,
              port: h.ssh?.port ?? s.port,
              user: h.ssh?.user ?? s.user,
              identityFile: expandHome(h.ssh?.identityFile ?? s.identityFile ?? "~/.ssh/id_ed25519"),
              knownHostsFile: expandHome(s.knownHostsFile),
            },
    }));
  }

  /** Checks that every planned machine is a host of the cluster file and its SSH server answers. */
  async provision(plan: ClusterMachinesPlan): Promise<ProvisionResult> {
    const all = this.machines();
    const missing = plan.machines.filter((m) => !all.some((a) => a.node === m.node));
    if (missing.length) throw new UsageError(`the ssh driver cannot create machines; not in the cluster file: ${missing.map((m) => m.node).join(", ")}`);
    const chosen = plan.machines.length ? all.filter((a) => plan.machines.some((m) => m.node === a.node)) : all;
    await Promise.all(
      chosen.map(async (m) => {
        if (m.reach.kind !== "ssh") return;
        const banner = await sshBanner(m.reach.host, m.reach.port, 10_000);
        if (!banner.startsWith("SSH-")) throw new HostError(m.node, "ssh driver", `no SSH server answers on ${m.reach.host}:${m.reach.port}`);
      }),
    );
    return { machines: chosen, subnet: "", created: 0, started: 0 };
  }

  async list(cluster: string): Promise<Machine[]> {
    return cluster === this.cluster.metadata.name ? this.machines() : [];
  }

  async start(): Promise<void> {
    throw new UsageError("the ssh driver does not start machines (they are your own hosts)");
  }

  async stop(): Promise<void> {
    throw new UsageError("the ssh driver does not stop machines (they are your own hosts)");
  }

  async deleteMachine(): Promise<void> {
    throw new UsageError("the ssh driver does not delete machines (they are your own hosts); `kubeprov reset` removes Kubernetes from one");
  }

  async delete(): Promise<{ removed: string[] }> {
    throw new UsageError("the ssh driver does not delete machines (they are your own hosts); `kubeprov reset` removes Kubernetes from them");
  }
}

/** The SSH identification line of host:port ("" when nothing answers in time). */
export function sshBanner(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve) => {
    const s = createConnection({ host, port });
    let buf = "";
    let settled = false;
    const done = (v: string) => {
      if (settled) return;
      settled = true;
      s.destroy();
      resolve(v);
    };
    s.setTimeout(timeoutMs, () => done(""));
    s.on("data", (d) => {
      buf += d.toString("latin1");
      if (buf.includes("\n")) done(buf.split("\n")[0].trim());
    });
    s.on("error", () => done(""));
    s.on("close", () => done(buf.trim()));
  });
}
