// The task engine over real SSH: runPipeline connects to real OpenSSH servers (the connection pool), gathers
// facts in one command per host, writes files with fileTask, converges (a second run changes
// nothing), and a failing command's stderr comes back with host and task. Also as a non-root user
// through sudo, for files only root may write.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, chmodSync } from "node:fs";
import { tmpdir, release } from "node:os";
import { join } from "node:path";
import { runPipeline } from "../../provisioner/engine/pipeline.js";
import { fileTask } from "../../provisioner/engine/file-task.js";
import { FACTS_TASK, factsTask } from "../../provisioner/tasks/facts.js";
import { MemoryReporter } from "../../provisioner/events.js";
import { RunFailed } from "../../provisioner/errors.js";
import { clusterSchema, type Cluster } from "../../provisioner/spec/schema.js";
import type { Task } from "../../provisioner/engine/task.js";
import { startFleet, createSudoUser, TEST_USER, type SshFleet } from "../helpers/sshd.js";

let fleet: SshFleet;
let cluster: Cluster;
let work: string;

before(async () => {
  fleet = await startFleet(3);
  cluster = clusterSchema.parse(fleet.clusterInput());
  work = mkdtempSync(join(tmpdir(), "kpt-engine-ssh-"));
  chmodSync(work, 0o700); // only root may write here: the sudo test depends on it
});

after(async () => {
  await fleet?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const confTask = (): Task =>
  fileTask({
    name: "files/conf",
    phase: "files",
    path: (h) => join(work, h.name, "etc", "app.conf"),
    mode: 0o640,
    content: (h) => `host=${h.name}\narch=${h.facts!.arch}\n`,
  });

// The cluster lock, one file per host: these servers share this machine's /var/lock.
const lockOpts = () => ({ lockOptions: { path: (h: { name: string }) => join(work, `${h.name}.lock`) } });

test("facts, files and convergence over SSH: first run changes, second run reports 0 changed", async () => {
  const r1 = new MemoryReporter();
  const s1 = await runPipeline({ cluster, source: "cluster.yaml", tasks: [confTask()], facts: factsTask, reporter: r1, ...lockOpts() });
  assert.deepEqual([s1.changed, s1.unchanged, s1.failed], [3, 3, 0]);
  const facts = s1.results.filter((r) => r.task === FACTS_TASK);
  assert.equal(facts.length, 3);
  for (const f of facts) assert.match(f.reason!, new RegExp(`kernel ${release().replace(/\./g, "\\.")}`));
  for (const s of fleet.servers) {
    const p = join(work, s.name, "etc", "app.conf");
    assert.match(readFileSync(p, "utf8"), new RegExp(`^host=${s.name}\narch=\\w+\n$`));
    assert.equal(statSync(p).mode & 0o7777, 0o640);
  }
  const s2 = await runPipeline({ cluster, source: "cluster.yaml", tasks: [confTask()], facts: factsTask, reporter: new MemoryReporter(), ...lockOpts() });
  assert.deepEqual([s2.changed, s2.unchanged], [0, 6]);
  for (const s of fleet.servers) assert.equal(existsSync(join(work, `${s.name}.lock`)), false, "lock left behind");
  const dry = await runPipeline({ cluster, source: "cluster.yaml", tasks: [confTask()], facts: factsTask, reporter: new MemoryReporter(), dryRun: true });
  assert.deepEqual([dry.changed, dry.unchanged], [0, 6]);
});

test("a failing remote command: RunFailed names host and task with the stderr; other hosts go on", async () => {
  const broken: Task = {
    name: "prepare/install",
    phase: "prepare",
    description: "",
    hosts: (ctx) => ctx.hosts,
    perHost: true,
    check: async (h) => {
      const r = await h.transport.exec(`test -e ${join(work, h.name, "installed")}`, { check: false });
      return r.code === 0 ? { needed: false } : { needed: true, reason: "install" };
    },
    apply: async (h) => {
      const fail = h.name === fleet.servers[1].name;
      await h.transport.exec(fail ? "echo 'E: Unable to locate package kubelet-frob' >&2; exit 100" : `touch ${join(work, h.name, "installed")}`);
    },
  };
  const after: Task = { ...fileTask({ name: "files/after-install", phase: "files", path: (h) => join(work, h.name, "after"), mode: 0o644, content: "x" }), after: ["prepare/install"], perHost: true };
  const reporter = new MemoryReporter();
  const bad = fleet.servers[1].name;
  await assert.rejects(runPipeline({ cluster, source: "cluster.yaml", tasks: [broken, after], facts: factsTask, reporter, ...lockOpts() }), (e: unknown) => {
    assert.ok(e instanceof RunFailed);
    assert.equal(e.exitCode, 1);
    assert.match(e.message, new RegExp(`${bad} \\[prepare/install\\]: ${bad}: command failed \\(exit 100\\)`));
    assert.match(e.details!, /E: Unable to locate package kubelet-frob/);
    return true;
  });
  const failed = reporter.events.find((ev) => ev.type === "task" && ev.status === "failed");
  assert.ok(failed && failed.type === "task");
  assert.equal(failed.host, bad);
  assert.match(failed.details!, /Unable to locate package kubelet-frob/);
  // perHost: the other hosts went on; the failed host's dependent did not run.
  assert.ok(existsSync(join(work, fleet.servers[0].name, "after")));
  assert.ok(existsSync(join(work, fleet.servers[2].name, "after")));
  assert.equal(existsSync(join(work, bad, "after")), false);
});

test("as a non-root user, fileTask reads and writes root-only paths through sudo", async () => {
  const cleanup = createSudoUser();
  try {
    const c = clusterSchema.parse(fleet.clusterInput({ ssh: { user: TEST_USER } }));
    const secret = (): Task =>
      fileTask({ name: "pki/key", phase: "pki", path: (h) => join(work, "root-only", h.name, "key.pem"), mode: 0o600, content: "not really a key\n" });
    const s1 = await runPipeline({ cluster: c, source: "cluster.yaml", tasks: [secret()], facts: factsTask, reporter: new MemoryReporter(), ...lockOpts() });
    assert.equal(s1.changed, 3);
    const p = join(work, "root-only", fleet.servers[0].name, "key.pem");
    assert.equal(statSync(p).uid, 0);
    assert.equal(statSync(p).mode & 0o7777, 0o600);
    const s2 = await runPipeline({ cluster: c, source: "cluster.yaml", tasks: [secret()], facts: factsTask, reporter: new MemoryReporter(), ...lockOpts() });
    assert.equal(s2.changed, 0);
  } finally {
    cleanup();
  }
});
