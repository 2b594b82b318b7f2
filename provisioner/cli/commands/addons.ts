// kubeprov addons list|enable|disable: the optional add-ons of spec.addons (storage, metrics-server),
// like `minikube addons`. list reads the cluster file and the cluster (read-only); enable and
// disable record the choice in the cluster file of a cluster made by `kubeprov up` and converge the
// cluster to it (the same plan as `up`): enabled, the add-on's objects are applied; disabled, every
// object it made is deleted.
import type { Command } from "commander";
import { readFileSync } from "node:fs";
import { parseDocument } from "yaml";
import { UsageError } from "../../errors.js";
import { writeFileAtomic } from "../../drivers/localfiles.js";
import { parseClusterText } from "../../spec/load.js";
import type { Cluster, ClusterInput } from "../../spec/schema.js";
import { addonStatus, findAddon, OPTIONAL_ADDONS, type AddonStatus, type OptionalAddon } from "../../tasks/optional-addons.js";
import { loadTarget } from "../target.js";
import { dryRunOption, outputOption, targetOptions, verboseOption, type CommonOptions } from "../options.js";

/** spec.addons as written in a cluster file (not defaulted), or undefined when the file has none. */
export function recordedAddons(clusterFileText: string): ClusterInput["spec"]["addons"] | undefined {
  try {
    const v = parseDocument(clusterFileText).getIn(["spec", "addons"]) as { toJSON?: () => unknown } | undefined;
    const js = v && typeof v.toJSON === "function" ? v.toJSON() : undefined;
    return js && typeof js === "object" && !Array.isArray(js) ? (js as ClusterInput["spec"]["addons"]) : undefined;
  } catch {
    return undefined;
  }
}

/** The cluster file's text with spec.addons.<key>.enabled set (comments and the rest kept). */
export function setAddonEnabled(clusterFileText: string, addon: OptionalAddon, enabled: boolean): string {
  const doc = parseDocument(clusterFileText);
  doc.setIn(["spec", "addons", addon.key, "enabled"], enabled);
  return doc.toString({ lineWidth: 0 });
}

function requireAddon(name: string): OptionalAddon {
  const addon = findAddon(name);
  if (!addon) throw new UsageError(`unknown add-on ${JSON.stringify(name)}: the add-ons are ${OPTIONAL_ADDONS.map((a) => a.name).join(", ")}`);
  return addon;
}

/** The state of every add-on, read through the first control plane's admin kubeconfig. */
export async function listAddons(cluster: Cluster, source: string): Promise<AddonStatus[]> {
  const [{ openTransport }, { toHost, closeHosts }, { createRunContext }, { MemoryReporter }, { apiClient, closeApiClients }] = await Promise.all([
    import("../../transport/pool.js"),
    import("../../engine/hosts.js"),
    import("../../engine/context.js"),
    import("../../events.js"),
    import("../../bootstrap/api.js"),
  ]);
  const spec = cluster.spec.hosts.find((h) => h.roles.includes("control-plane"))!;
  const host = toHost(spec, await openTransport(cluster, spec));
  const ctx = createRunContext({ cluster, source, hosts: [host], reporter: new MemoryReporter() });
  try {
    const api = await apiClient(ctx);
    return await Promise.all(OPTIONAL_ADDONS.map((a) => addonStatus(api, a, cluster)));
  } finally {
    await closeApiClients(ctx);
    await closeHosts([host]);
  }
}

export function renderAddonsTable(rows: AddonStatus[]): string {
  const table = [["NAME", "FILE", "CLUSTER", "DETAIL"], ...rows.map((r) => [r.name, r.enabled ? "enabled" : "disabled", r.state, r.detail])];
  const widths = table[0].map((_, i) => Math.max(...table.map((row) => row[i].length)));
  return table.map((row) => row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i] + 2))).join("") + "\n").join("");
}

type SwitchOptions = CommonOptions;

/** enable/disable: record the choice in the named cluster's file, then converge the cluster to it. */
async function switchAddon(addonName: string, enabled: boolean, o: SwitchOptions): Promise<void> {
  const addon = requireAddon(addonName);
  if (o.file !== undefined && o.file !== "")
    throw new UsageError(
      `addons ${enabled ? "enable" : "disable"} changes the cluster file of a cluster made by \`kubeprov up\` (--name); for ${o.file}, set spec.addons.${addon.key}.enabled: ${enabled} in it and run \`kubeprov apply -f ${o.file}\``,
    );
  if (!o.name) throw new UsageError(`which cluster? give --name NAME (a cluster made by \`kubeprov up\`)`);
  const { source } = await loadTarget({ name: o.name });
  const before = readFileSync(source, "utf8");
  const text = setAddonEnabled(before, addon, enabled);
  // Validated as any cluster file is, before it is written.
  const cluster = parseClusterText(text, source);
  if (!o.dryRun && text !== before) writeFileAtomic(source, text, 0o600);
  const [{ runPipeline }, { clusterTasks }, { factsTask }] = await Promise.all([import("../../engine/pipeline.js"), import("../../plan/cluster.js"), import("../../tasks/facts.js")]);
  await runPipeline({ cluster, source, tasks: clusterTasks("all"), facts: factsTask, output: o.output, dryRun: o.dryRun, options: { verbose: o.verbose ?? 0 } });
  if (o.output === "text")
    process.stderr.write(
      o.dryRun
        ? `dry run: ${source} not changed\n`
        : `${addon.name} ${enabled ? "enabled" : "disabled"} in ${source}${enabled ? `; \`kubeprov addons list --name ${o.name}\` shows when it is Running` : ""}\n`,
    );
}

export function register(program: Command): void {
  const addons = program.command("addons").description("optional add-ons (storage, metrics-server): list them, enable or disable one (like `minikube addons`)");

  const list = addons.command("list").description("each add-on: enabled in the cluster file or not, and its state in the cluster (Running, Starting, Partial, Absent)");
  targetOptions(list);
  outputOption(list);
  list.action(async (o: CommonOptions) => {
    const { cluster, source } = await loadTarget(o);
    const rows = await listAddons(cluster, source);
    if (o.output === "json") process.stdout.write(JSON.stringify({ cluster: cluster.metadata.name, addons: rows }) + "\n");
    else process.stdout.write(renderAddonsTable(rows));
  });

  for (const [verb, enabled] of [["enable", true], ["disable", false]] as const) {
    const cmd = addons
      .command(verb)
      .description(
        enabled
          ? "enable an add-on of a cluster made by `kubeprov up`: recorded in its cluster file, then its objects applied"
          : "disable an add-on of a cluster made by `kubeprov up`: recorded in its cluster file, then every object it made deleted",
      )
      .argument("<addon>", `one of ${OPTIONAL_ADDONS.map((a) => a.name).join(", ")}`)
      .option("-f, --file <file>", "not for enable/disable: edit the file and run `kubeprov apply` instead")
      .option("--name <name>", "a cluster made by `kubeprov up`");
    outputOption(cmd);
    dryRunOption(cmd);
    verboseOption(cmd);
    cmd.action(async (addonName: string, o: SwitchOptions) => {
      await switchAddon(addonName, enabled, o);
    });
  }
}
