// kubeprov ssh --name NAME NODE [-- COMMAND...]: the system `ssh` with the cluster's own key and
// known_hosts (StrictHostKeyChecking=yes: a node whose host key is not recorded is refused).
// Words after `--` are run by the remote shell, as with ssh; without them, an interactive shell.
// The exit code is the remote command's (255: ssh itself failed).
import type { Command } from "commander";
import { existsSync } from "node:fs";
import { execa } from "execa";
import { ConfigError, RuntimeFailure, UsageError } from "../../errors.js";
import { clusterFiles } from "../../drivers/localfiles.js";
import { listNodes } from "./node.js";
import { resolveClusterDriver } from "../../drivers/record.js";
import { DNS1123_LABEL } from "../../constants.js";


/** Pure: the ssh argv for a node. */
export function sshArgs(o: { address: string; user: string; port: number; identityFile: string; knownHostsFile: string; command: string[]; tty: boolean }): string[] {
  return [
    "-i", o.identityFile,
    "-o", "IdentitiesOnly=yes",
    "-o", `UserKnownHostsFile=${o.knownHostsFile}`,
    "-o", "GlobalKnownHostsFile=/dev/null",
    "-o", "StrictHostKeyChecking=yes",
    "-o", "PasswordAuthentication=no",
    "-o", "LogLevel=ERROR",
    "-o", "ConnectTimeout=20",
    "-p", String(o.port),
    ...(o.command.length === 0 ? (o.tty ? ["-t"] : []) : ["-T"]),
    `${o.user}@${o.address}`,
    ...(o.command.length ? ["--", ...o.command] : []),
  ];
}

export function register(program: Command): void {
  program
    .command("ssh")
    .description("open a shell on a node of a cluster made by `kubeprov up`, or run COMMAND there (after --)")
    .requiredOption("--name <name>", "cluster name")
    .argument("<node>", "node name (see `kubeprov node list`)")
    .argument("[command...]", "command for the remote shell (after --)")
    .action(async (node: string, command: string[], o: { name: string }) => {
      if (!DNS1123_LABEL.test(o.name)) throw new UsageError(`--name ${JSON.stringify(o.name)}: a cluster name is a DNS-1123 label`);
      if (resolveClusterDriver(o.name).name === "none")
        throw new UsageError(`cluster ${o.name} runs on the none driver: its node is this machine, there is nothing to SSH to`);
      const files = clusterFiles(o.name);
      if (!existsSync(files.identityFile) || !existsSync(files.knownHostsFile))
        throw new ConfigError(`no SSH key or known_hosts for cluster ${o.name} in ${files.dir} (run \`kubeprov up --name ${o.name}\`)`);
      const nodes = await listNodes(o.name);
      const target = nodes.find((n) => n.name === node || n.machine === node);
      if (!target) throw new UsageError(`cluster ${o.name} has no node ${JSON.stringify(node)}; nodes: ${nodes.map((n) => n.name).join(", ") || "none"}`);
      if (!target.address) throw new RuntimeFailure(`node ${target.name} has no address (is it running? \`kubeprov up --name ${o.name}\` starts it)`);
      const args = sshArgs({
        address: target.address,
        user: "root",
        port: 22,
        identityFile: files.identityFile,
        knownHostsFile: files.knownHostsFile,
        command: command ?? [],
        tty: process.stdin.isTTY === true,
      });
      const r = await execa("ssh", args, { stdio: "inherit", reject: false });
      if ((r as { code?: string }).code === "ENOENT") throw new RuntimeFailure("the `ssh` client is not installed (apt-get install openssh-client)");
      process.exitCode = r.exitCode ?? 255;
    });
}
