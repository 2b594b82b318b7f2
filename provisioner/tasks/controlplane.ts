// Phases "etcd" and "control-plane": etcd (stacked) and kube-apiserver, kube-controller-manager,
// kube-scheduler on a control plane, either as static pods (manifests in /etc/kubernetes/manifests,
// run by the kubelet from the imported images) or as systemd units running the binaries in
// /usr/local/bin, by spec.controlPlane.mode. Both modes use the same flags (tasks/controlplane-flags.ts).
import { BIN_DIR, ETCD_DATA_DIR, MANIFESTS_DIR } from "../constants.js";
import { fileTask } from "../engine/file-task.js";
import { clusterImageRef } from "../images/catalog.js";
import { readBundleManifest } from "../images/build.js";
import { renderTemplate } from "../render.js";
import { shq } from "../transport/transport.js";
import type { Cluster } from "../spec/schema.js";
import type { CheckResult, Host, RunContext, Task } from "../engine/task.js";
import { componentFlags, flagsToArgs, ETCD_METRICS_PORT, urlHost, type ComponentName, type Flags } from "./controlplane-flags.js";
import { joiningEtcdFlags } from "./etcdmember.js";
import { PORT_APISERVER, PORT_CONTROLLER_MANAGER, PORT_ETCD_CLIENT, PORT_SCHEDULER } from "../constants.js";
import { execStartLine } from "./kubelet.js";
import { serviceTask } from "./service.js";
import { bundlePath } from "./images.js";

export type ControlPlaneMode = Cluster["spec"]["controlPlane"]["mode"];

export const UNIT_DIR = "/etc/systemd/system";
export const manifestPath = (c: ComponentName) => `${MANIFESTS_DIR}/${c}.yaml`;
export const unitPath = (c: ComponentName) => `${UNIT_DIR}/${c}.service`;

/** Image references from the bundle's versions (the same the images task imports). */
export function componentImage(cluster: Cluster, component: ComponentName): string {
  const m = readBundleManifest(bundlePath(cluster));
  return clusterImageRef(cluster, component, m);
}

function yamlItem(s: string): string {
  return /^[A-Za-z0-9_\-=.,/:*+@]+$/.test(s) && !/^[-?:,[\]{}#&*!|>'"%@`]/.test(s.replace(/^--/, "x")) ? s : JSON.stringify(s);
}

/** The static pod manifest of a component. Pure but for the image tag read from the bundle's manifest. */
export function renderStaticPod(cluster: Cluster, host: Host, component: ComponentName, image: string, overrides?: Flags): string {
  const flags = componentFlags(component, cluster, host);
  for (const [k, v] of overrides ?? []) flags.set(k, v);
  const command = [component, ...flagsToArgs(flags)].map((a) => `    - ${yamlItem(a)}`).join("\n");
  const values: Record<string, string | number> = { image, command };
  if (component === "etcd") {
    values.advertiseClientURL = `https://${urlHost(host.nodeIP)}:${PORT_ETCD_CLIENT}`;
    values.metricsPort = ETCD_METRICS_PORT;
  } else if (component === "kube-apiserver") {
    values.advertiseAddress = flags.get("advertise-address") ?? host.nodeIP;
    values.securePort = flags.get("secure-port") ?? PORT_APISERVER;
  } else if (component === "kube-controller-manager") {
    values.port = flags.get("secure-port") ?? PORT_CONTROLLER_MANAGER;
  } else {
    values.port = flags.get("secure-port") ?? PORT_SCHEDULER;
  }
  return renderTemplate(`manifests/${component}.yaml`, values);
}

/** The systemd unit of a component (mode systemd). Pure. */
export function renderUnit(cluster: Cluster, host: Host, component: ComponentName, overrides?: Flags): string {
  const flags = componentFlags(component, cluster, host);
  for (const [k, v] of overrides ?? []) flags.set(k, v);
  return renderTemplate(`systemd/${component}.service`, {
    execStart: execStartLine(`${BIN_DIR}/${component}`, flagsToArgs(flags)),
  });
}

/** A task that runs one of two tasks by spec.controlPlane.mode, and removes the other mode's leftovers. */
function byMode(component: ComponentName, name: string, phase: string, description: string, hosts: (ctx: RunContext) => Host[], after: string[], tasks: Record<ControlPlaneMode, Task>, leftovers: Record<ControlPlaneMode, string>): Task {
  const pick = (ctx: RunContext) => tasks[ctx.cluster.spec.controlPlane.mode];
  const other = (ctx: RunContext) => leftovers[ctx.cluster.spec.controlPlane.mode];
  return {
    name,
    phase,
    description,
    hosts,
    after,
    async check(host, ctx): Promise<CheckResult> {
      const r = await pick(ctx).check(host, ctx);
      const stale = await host.transport.exec(`test -e ${shq(other(ctx))} && echo stale || true`, { sudo: true });
      if (stale.stdout.includes("stale")) return { needed: true, reason: [`remove ${other(ctx)} (mode is now ${ctx.cluster.spec.controlPlane.mode})`, r.needed ? r.reason : ""].filter(Boolean).join("; ") };
      return r;
    },
    async apply(host, ctx) {
      // The wait phase must not trust an answer from the instance this run is replacing.
      markChanged(ctx, host, component);
      const path = other(ctx);
      if (path.endsWith(".service")) {
        const unit = path.split("/").pop()!;
        await host.transport.exec(`if [ -e ${shq(path)} ]; then systemctl disable --now ${shq(unit)} >/dev/null 2>&1 || true; rm -f ${shq(path)}; systemctl daemon-reload; fi`, { sudo: true });
      } else {
        await host.transport.exec(`rm -f ${shq(path)}`, { sudo: true });
      }
      const r = await pick(ctx).check(host, ctx);
      if (r.needed) return pick(ctx).apply(host, ctx);
    },
  };
}

export const ETCD_TASK = "etcd/local";

/** Components whose manifest or unit this run changed, per host (read by wait-control-plane). */
export function changedComponents(ctx: RunContext, host: Host): ComponentName[] {
  return [...((ctx.shared.get(`controlplane/changed/${host.name}`) as Set<ComponentName> | undefined) ?? [])];
}

function markChanged(ctx: RunContext, host: Host, component: ComponentName): void {
  const key = `controlplane/changed/${host.name}`;
  const set = (ctx.shared.get(key) as Set<ComponentName> | undefined) ?? new Set<ComponentName>();
  set.add(component);
  ctx.shared.set(key, set);
}
export const controlPlaneTaskName = (c: ComponentName) => `control-plane/${c}`;

export function componentTask(component: ComponentName, phase: string, name: string, hosts: (ctx: RunContext) => Host[], after: string[]): Task {
  // etcd joining through the API alone names the members etcd holds, not the stored file's.
  const overridesOf = (host: Host, ctx: RunContext) => (component === "etcd" ? joiningEtcdFlags(host, ctx) : Promise.resolve(undefined));
  const staticPod = fileTask({
    name,
    phase,
    path: manifestPath(component),
    mode: 0o600,
    hosts,
    content: async (host, ctx) => renderStaticPod(ctx.cluster, host, component, componentImage(ctx.cluster, component), await overridesOf(host, ctx)),
  });
  const unit = serviceTask({
    name,
    phase,
    description: `${component} as a systemd unit`,
    unit: component,
    hosts,
    files: async (host, ctx) => [{ path: unitPath(component), content: renderUnit(ctx.cluster, host, component, await overridesOf(host, ctx)), mode: 0o644 }],
    beforeStart: component === "etcd" ? async (host) => void (await host.transport.exec(`mkdir -p ${ETCD_DATA_DIR} && chmod 0700 ${ETCD_DATA_DIR}`, { sudo: true })) : undefined,
  });
  // The check compares files rendered from the cluster file and the host alone.
  return Object.assign(
    byMode(
      component,
      name,
      phase,
      `${component}: static pod ${manifestPath(component)} or systemd unit ${unitPath(component)}, by spec.controlPlane.mode`,
      hosts,
      after,
      { "static-pods": staticPod, systemd: unit },
      { "static-pods": unitPath(component), systemd: manifestPath(component) },
    ),
    { checkAhead: true },
  );
}

/** etcd's data directory, 0700 as kubeadm makes it. */
function etcdDataDirTask(hosts: (ctx: RunContext) => Host[], after: string[]): Task {
  return {
    name: "etcd/data-dir",
    phase: "etcd",
    description: `${ETCD_DATA_DIR} exists with mode 0700`,
    hosts,
    after,
    checkAhead: true,
    async check(host) {
      const r = await host.transport.exec(`stat -c %a ${ETCD_DATA_DIR} 2>/dev/null || echo absent`, { sudo: true });
      const mode = r.stdout.trim();
      return mode === "700" ? { needed: false, reason: `${ETCD_DATA_DIR} 0700` } : { needed: true, reason: mode === "absent" ? `create ${ETCD_DATA_DIR}` : `chmod ${ETCD_DATA_DIR} ${mode} -> 0700` };
    },
    async apply(host) {
      await host.transport.exec(`mkdir -p ${ETCD_DATA_DIR} && chmod 0700 ${ETCD_DATA_DIR}`, { sudo: true });
    },
  };
}

export interface ControlPlaneTaskOptions {
  hosts: (ctx: RunContext) => Host[];
  /** Tasks every one of these waits for (certs, kubeconfigs, images, kubelet). */
  after: string[];
}

/** Phase "etcd": the data directory and the member (static pod or unit). */
export function etcdTasks(opts: ControlPlaneTaskOptions): Task[] {
  return [
    etcdDataDirTask(opts.hosts, opts.after),
    componentTask("etcd", "etcd", ETCD_TASK, opts.hosts, [...opts.after, "etcd/data-dir"]),
  ];
}

/** Phase "control-plane": the three components (binaries for mode systemd come from prepare/binaries). */
export function controlPlaneTasks(opts: ControlPlaneTaskOptions & { phase?: string; prefix?: string }): Task[] {
  return (["kube-apiserver", "kube-controller-manager", "kube-scheduler"] as ComponentName[]).map((c) =>
    componentTask(c, opts.phase ?? "control-plane", opts.prefix ? `${opts.prefix}/${c}` : controlPlaneTaskName(c), opts.hosts, opts.after),
  );
}

