// Helpers for the control-plane end-to-end tests: run the built CLI as a user would (own
// KUBEPROV_HOME), run kubectl (the bundle's) against the printed kubeconfig, look inside a node
// container, and remove everything a test cluster left in Docker (found by its label).
import { execa } from "execa";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { DEFAULT_KUBERNETES_VERSION } from "../../provisioner/constants.js";
import { bundleDir, packageRoot } from "../../provisioner/paths.js";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { parse, stringify } from "yaml";
import assert from "node:assert/strict";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
export const KUBEPROV = join(ROOT, "bin", "kubeprov.js");
export const KUBECTL = join(bundleDir(DEFAULT_KUBERNETES_VERSION), "bin", "kubectl");

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export async function kubeprov(home: string, args: string[], timeoutMs = 10 * 60_000): Promise<Run> {
  const t0 = Date.now();
  const r = await execa(process.execPath, [KUBEPROV, ...args], {
    reject: false,
    timeout: timeoutMs,
    env: { KUBEPROV_HOME: home, KUBECONFIG: join(home, "kubeconfig"), CI: "1" },
    stdin: "ignore",
  });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), ms: Date.now() - t0 };
}

export async function kubectl(kubeconfig: string, args: string[], timeoutMs = 30_000): Promise<Run> {
  const t0 = Date.now();
  const r = await execa(KUBECTL, ["--kubeconfig", kubeconfig, "--request-timeout=10s", ...args], { reject: false, timeout: timeoutMs });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), ms: Date.now() - t0 };
}

/** A command inside the node container (as an operator would with `docker exec`). */
export async function onNode(container: string, script: string): Promise<Run> {
  const t0 = Date.now();
  const r = await execa("docker", ["exec", container, "sh", "-c", script], { reject: false, timeout: 60_000 });
  return { code: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr), ms: Date.now() - t0 };
}

/** Polls fn until it returns true or the time is up; returns the milliseconds it took, or -1. */
export async function waitFor(fn: () => Promise<boolean>, limitMs: number, everyMs = 500): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < limitMs) {
    if (await fn().catch(() => false)) return Date.now() - t0;
    await new Promise((r) => setTimeout(r, everyMs));
  }
  return -1;
}

/** The JSON Lines summary event of a `-o json` run. */
export function summaryOf(stdout: string): { changed: number; unchanged: number; failed: number; skipped: number; durationMs: number } | undefined {
  const lines = stdout.split("\n").filter((l) => l.startsWith("{"));
  for (const l of lines.reverse()) {
    const e = JSON.parse(l) as { type: string };
    if (e.type === "summary") return e as never;
  }
  return undefined;
}

/** Everything labelled for the cluster: containers, volumes, networks (one implementation for all e2e helpers). */
import { dockerCleanup } from "./kubeprov-cli.js";
export { dockerCleanup };

/**
 * An image of one static Go program from test/e2e/fixtures/NAME (built here: nothing is pulled),
 * tagged `tag` and labelled for `cluster` so cleanup finds it. `work` is a scratch directory.
 */
export async function buildFixtureImage(name: string, tag: string, cluster: string, work: string): Promise<void> {
  await execa("go", ["build", "-trimpath", "-ldflags", "-s -w", "-o", join(work, name), "."], {
    cwd: join(packageRoot(), "test", "e2e", "fixtures", name),
    env: { CGO_ENABLED: "0", GOFLAGS: "-mod=mod", GOTOOLCHAIN: "local" },
  });
  writeFileSync(join(work, "Dockerfile"), `FROM scratch\nCOPY ${name} /${name}\nENTRYPOINT ["/${name}"]\n`);
  await execa("docker", ["build", "-q", "--label", `io.kubeprov.cluster=${cluster}`, "-t", tag, work]);
}

/** etcdctl on a control plane node, with the health-check client certificate kubeprov issues. */
export const ETCDCTL =
  "ETCDCTL_API=3 /usr/local/bin/etcdctl --endpoints=https://127.0.0.1:2379 --cacert=/etc/kubernetes/pki/etcd/ca.crt " +
  "--cert=/etc/kubernetes/pki/etcd/healthcheck-client.crt --key=/etc/kubernetes/pki/etcd/healthcheck-client.key";

/** etcd's members as `etcdctl member list -w simple` on `node` prints them: [id, status, name, peers, clients, isLearner]. */
export async function etcdMembers(node: string): Promise<string[][]> {
  const list = await onNode(node, `${ETCDCTL} member list -w simple`);
  if (list.code !== 0) throw new Error(`etcdctl member list on ${node}: ${list.stderr}`);
  return list.stdout.trim().split("\n").filter(Boolean).map((l) => l.split(", "));
}

/** Asserts that etcd has exactly these members, every one started and voting (no learner left). */
export async function assertVotingMembers(node: string, names: string[]): Promise<void> {
  const members = await etcdMembers(node);
  const text = members.map((m) => m.join(", ")).join("\n");
  assert.deepEqual(members.map((m) => m[2]).sort(), [...names].sort(), text);
  for (const m of members) assert.deepEqual([m[1], m[5]], ["started", "false"], `not a started voting member: ${text}`);
}

export interface MachineHost {
  name: string;
  address: string;
  roles: string[];
}
export interface MachinesFile {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: Record<string, unknown>;
}

/**
 * `nodes` machines, each able to be a control plane, made by `up --no-kubernetes` (nothing of
 * Kubernetes on them yet), and the cluster file `up` wrote for them.
 */
export async function sshMachines(home: string, name: string, nodes: number): Promise<{ base: MachinesFile; hosts: MachineHost[] }> {
  const up = await kubeprov(home, ["up", "--name", name, "--nodes", String(nodes), "--control-planes", String(nodes), "--no-kubernetes", "--no-kubeconfig"]);
  assert.equal(up.code, 0, up.stderr.slice(-3000));
  const base = parse(readFileSync(join(home, "clusters", name, "cluster.yaml"), "utf8")) as MachinesFile;
  const hosts = base.spec.hosts as MachineHost[];
  assert.equal(hosts.length, nodes);
  return { base, hosts };
}

/** The cluster file of the first n hosts over SSH, without HA (the endpoint is the first control plane); `ssh` overrides SSH settings. */
export function firstHostsFile(base: MachinesFile, hosts: MachineHost[], n: number, ssh?: Record<string, unknown>): string {
  const spec: Record<string, unknown> = { ...base.spec, hosts: hosts.slice(0, n) };
  if (ssh) spec.ssh = { ...(base.spec.ssh as Record<string, unknown>), ...ssh };
  delete spec.ha;
  delete spec.controlPlaneEndpoint;
  return stringify({ ...base, spec });
}

/** How many Nodes are Ready. */
export async function readyNodes(kubeconfig: string): Promise<number> {
  const n = await kubectl(kubeconfig, ["get", "nodes", "-o", "jsonpath={range .items[*]}{.status.conditions[?(@.type=='Ready')].status}{\"\\n\"}{end}"]);
  return n.stdout.split("\n").filter((l) => l === "True").length;
}

/** For after(): `kubeprov delete` of a test's cluster, whatever Docker still holds of it, and its home directory. */
export async function removeTestCluster(home: string, name: string): Promise<void> {
  await kubeprov(home, ["delete", "--name", name], 120_000).catch(() => undefined);
  await dockerCleanup(name);
  rmSync(home, { recursive: true, force: true });
}
