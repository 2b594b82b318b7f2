// preflightTasks through the real pipeline on this machine (a TmpTransport "host": real /bin/sh,
// read-only gather): one check event per check of the host's roles, failures named in the task's
// error, --ignore-preflight-errors turning them into ignored warnings, and no fix task without --fix.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseClusterText } from "../../provisioner/spec/load.js";
import { runPipeline } from "../../provisioner/engine/pipeline.js";
import { factsTask } from "../../provisioner/tasks/facts.js";
import { MemoryReporter, type KubeprovEvent } from "../../provisioner/events.js";
import { preflightTasks, validateIgnorePreflightErrors } from "../../provisioner/tasks/preflight.js";
import { checksForRoles } from "../../provisioner/preflight/checks.js";
import { UsageError } from "../../provisioner/errors.js";
import { makeTmpHosts } from "../helpers/tmp-transport.js";

// A node name no machine running these tests has as its hostname: the Hostname check must fail.
const NODE = "kpt-never-this-host";

async function run(roles: ("control-plane" | "worker")[], options: Record<string, unknown>) {
  const tmp = await makeTmpHosts(1, roles);
  const host = tmp.hosts[0]!;
  host.name = NODE;
  host.spec = { ...host.spec, name: NODE };
  const cluster = parseClusterText(
    `apiVersion: kubeprov/v1alpha1\nkind: Cluster\nmetadata: {name: kpt-unit}\nspec:\n  hosts:\n    - {name: ${NODE}, address: 127.0.0.1, roles: [${roles.join(", ")}], connection: local}\n    - {name: kpt-other-cp, address: 127.0.0.1, roles: [control-plane], connection: local}\n`,
    "unit.yaml",
  );
  // only this host is connected (the other control plane exists in the file only)
  const reporter = new MemoryReporter();
  try {
    const summary = await runPipeline({ cluster, source: "unit.yaml", tasks: preflightTasks(), facts: factsTask, hosts: [host], reporter, lock: false, options });
    return { summary, events: reporter.events, error: undefined as Error | undefined };
  } catch (e) {
    return { summary: undefined, events: reporter.events, error: e as Error };
  } finally {
    await tmp.cleanup();
  }
}

const checkEvents = (ev: KubeprovEvent[]) => ev.filter((e): e is Extract<KubeprovEvent, { type: "check" }> => e.type === "check");

test("one check event per check of the role; a failure fails the task naming host and IDs", async () => {
  const r = await run(["worker"], {});
  const ids = checkEvents(r.events).map((e) => e.id);
  assert.deepEqual(ids, checksForRoles(["worker"]).map((c) => c.id));
  assert.ok(!ids.includes("Port-6443"));
  const hostname = checkEvents(r.events).find((e) => e.id === "Hostname")!;
  assert.equal(hostname.status, "fail");
  assert.ok(r.error, "preflight passed although the hostname differs");
  assert.match(r.error!.message, new RegExp(`${NODE}.*preflight failed: .*Hostname`));
  // no fix task ran without --fix
  assert.ok(!r.events.some((e) => e.type === "task" && e.task === "preflight/fix"));
});

test("--ignore-preflight-errors=all: every failure becomes an ignored warning and the run passes", async () => {
  const r = await run(["control-plane"], { ignorePreflightErrors: ["all"] });
  assert.equal(r.error, undefined, r.error?.message);
  const ev = checkEvents(r.events);
  assert.equal(ev.length, checksForRoles(["control-plane"]).length);
  assert.ok(ev.every((e) => e.status !== "fail"));
  assert.equal(ev.find((e) => e.id === "Hostname")!.ignored, true);
});

test("validateIgnorePreflightErrors: usage error naming unknown IDs; canonical IDs otherwise", () => {
  assert.throws(() => validateIgnorePreflightErrors(["Swap", "Nope", "Port-1"]), (e: unknown) => e instanceof UsageError && /unknown check IDs Nope, Port-1/.test((e as Error).message));
  assert.deepEqual(validateIgnorePreflightErrors("swap,port-6443"), ["Swap", "Port-6443"]);
  assert.deepEqual(validateIgnorePreflightErrors(["Swap", "ALL"]), ["all"]);
  assert.deepEqual(validateIgnorePreflightErrors(undefined), []);
});
