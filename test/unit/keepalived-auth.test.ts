// VRRP authentication (spec.ha.authentication): the cluster file's checks (exit 2, file:line:col and
// field named, the password never in a message), keepalived.conf as rendered with and without it,
// and the real keepalived (/usr/sbin/keepalived) in two network namespaces this test makes, joined
// by a veth pair in 10.213.250.0/24: one VIP holder, failover after the holder is killed, and two
// daemons with different passwords refusing each other's adverts. Needs root and iproute2; no Docker.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseClusterText } from "../../provisioner/spec/load.js";
import { ConfigError } from "../../provisioner/errors.js";
import type { Host, RunContext } from "../../provisioner/engine/task.js";
import { createRunContext } from "../../provisioner/engine/context.js";
import { MemoryReporter } from "../../provisioner/events.js";
import { KEEPALIVED_CHECK_SCRIPT, KEEPALIVED_CONFIG, keepalivedFiles, renderKeepalivedConfig } from "../../provisioner/tasks/ha.js";

const dir = mkdtempSync(join(tmpdir(), "kpt-vrrp-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const NET = "10.213.250";
const VIP = `${NET}.100`;

/** A cluster file with two control planes in NET; `ha` is the flow mapping's extra fields. */
const clusterText = (ha: string) => `apiVersion: kubeprov/v1alpha1
kind: Cluster
metadata: {name: vrrp}
spec:
  ha:
    enabled: true
    virtualIP: ${VIP}
${ha}
  hosts:
  - {name: cp1, address: ${NET}.1, roles: [control-plane]}
  - {name: cp2, address: ${NET}.2, roles: [control-plane]}
`;

function passwordFile(name: string, content: string, mode = 0o600): string {
  const p = join(dir, name);
  writeFileSync(p, content);
  chmodSync(p, mode);
  return p;
}

const withAuth = (file: string, advert = "1") => clusterText(`    advertInterval: ${advert}\n    authentication: {type: PASS, passwordFile: ${file}}`);

/** The ConfigError parseClusterText throws, with every problem line joined. */
function configError(text: string, source = join(dir, "cluster.yaml")): string {
  try {
    parseClusterText(text, source);
  } catch (e) {
    assert.ok(e instanceof ConfigError, String(e));
    assert.equal(e.exitCode, 2);
    return e.problems.join("\n");
  }
  assert.fail("the cluster file was accepted");
}

const cps = [
  { name: "cp1", nodeIP: `${NET}.1` },
  { name: "cp2", nodeIP: `${NET}.2` },
];

function ctxOf(text: string): RunContext {
  const cluster = parseClusterText(text, join(dir, "cluster.yaml"));
  const hosts: Host[] = cluster.spec.hosts.map((spec) => ({ name: spec.name, address: spec.address, nodeIP: spec.address, roles: spec.roles, spec, transport: {} as Host["transport"] }));
  return createRunContext({ cluster, hosts, reporter: new MemoryReporter(), source: join(dir, "cluster.yaml") });
}

describe("cluster file: spec.ha.authentication", () => {
  test("a 0600 password file of at most 8 characters with a whole-second advertInterval is accepted", () => {
    const f = passwordFile("ok.pw", "s3cr.t-8\n");
    const c = parseClusterText(withAuth(f), join(dir, "cluster.yaml"));
    assert.deepEqual(c.spec.ha.authentication, { type: "PASS", passwordFile: f });
    // Relative to the cluster file's directory.
    assert.doesNotThrow(() => parseClusterText(withAuth("ok.pw"), join(dir, "cluster.yaml")));
  });

  test("a sub-second or fractional advertInterval is refused with the reason (VRRP v2)", () => {
    const f = passwordFile("adv.pw", "abc");
    for (const advert of ["0.2", "1.5"]) {
      const msg = configError(withAuth(f, advert));
      assert.match(msg, /cluster\.yaml:8:21 spec\.ha\.advertInterval: with authentication the advertisement interval must be a whole number of seconds, at least 1/);
      assert.match(msg, /VRRP v3 has no authentication/);
      assert.match(msg, /VRRP v2/);
    }
    // The default (0.2) is refused too: authentication needs advertInterval set.
    assert.match(configError(clusterText(`    authentication: {passwordFile: ${f}}`)), /spec\.ha\.advertInterval: with authentication/);
  });

  test("a group- or world-readable, missing, empty, too long or unwritable password is refused without showing it", () => {
    const cases: Array<[string, string, number, RegExp]> = [
      ["world.pw", "Wrld0pen", 0o644, /has mode 0644: it holds a password, so group and others must have no access \(chmod 600 /],
      ["group.pw", "Grp0pen", 0o640, /has mode 0640/],
      ["long.pw", "NineChars", 0o600, /longer than 8 characters: VRRP v2 carries 8 bytes of it and keepalived ignores the rest/],
      ["empty.pw", "", 0o600, /is empty/],
      ["space.pw", "a b#c", 0o600, /has a character keepalived\.conf cannot hold/],
      ["quote.pw", 'ab"c', 0o600, /has a character keepalived\.conf cannot hold/],
    ];
    for (const [name, content, mode, want] of cases) {
      const f = passwordFile(name, content, mode);
      const msg = configError(withAuth(f));
      assert.match(msg, /cluster\.yaml:9:\d+ spec\.ha\.authentication\.passwordFile: /, msg);
      assert.match(msg, want, msg);
      if (content) assert.ok(!msg.includes(content), `the password is in the message: ${msg}`);
    }
    assert.match(configError(withAuth(join(dir, "absent.pw"))), /spec\.ha\.authentication\.passwordFile: cannot read .*absent\.pw \(no such file\)/);
    // An unknown type and a missing passwordFile are schema errors with their fields.
    assert.match(configError(clusterText("    advertInterval: 1\n    authentication: {type: AH, passwordFile: x}")), /spec\.ha\.authentication\.type: must be "PASS", got "AH"/);
    assert.match(configError(clusterText("    advertInterval: 1\n    authentication: {type: PASS}")), /spec\.ha\.authentication\.passwordFile: required field is missing/);
  });
});

describe("keepalived.conf", () => {
  test("without authentication: VRRP v3 and no password, as before, written 0644", () => {
    const ctx = ctxOf(clusterText("    advertInterval: 0.2"));
    const conf = renderKeepalivedConfig(ctx.cluster, cps[0], cps);
    assert.match(conf, /^    vrrp_version 3$/m);
    assert.match(conf, /^    advert_int 0\.2\n    unicast_src_ip 10\.213\.250\.1$/m);
    assert.doesNotMatch(conf, /authentication|auth_/);
    const file = keepalivedFiles(ctx.hosts[0], ctx).find((f) => f.path === KEEPALIVED_CONFIG)!;
    assert.equal(file.content, conf);
    assert.equal(file.mode, 0o644);
  });

  test("with authentication: VRRP v2, the PASS block after advert_int, written 0600; keepalived accepts it", (t) => {
    const f = passwordFile("render.pw", "Pa55:w0r\n");
    const ctx = ctxOf(withAuth(f));
    const file = keepalivedFiles(ctx.hosts[1], ctx).find((x) => x.path === KEEPALIVED_CONFIG)!;
    assert.equal(file.mode, 0o600);
    assert.match(file.content, /^    vrrp_version 2$/m);
    assert.match(file.content, /^    advert_int 1\n.*\n    authentication \{\n        auth_type PASS\n        auth_pass Pa55:w0r\n    \}\n    unicast_src_ip 10\.213\.250\.2$/m);
    if (spawnSync("keepalived", ["--version"]).status !== 0) return t.skip("keepalived not installed");
    const conf = join(dir, "check-auth.conf");
    writeFileSync(conf, file.content.replace(KEEPALIVED_CHECK_SCRIPT, "/bin/true"), { mode: 0o600 });
    const r = spawnSync("keepalived", ["--config-test", "-f", conf], { encoding: "utf8" });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
  });

  test("a password file made readable to others after loading is refused when keepalived.conf is rendered", () => {
    const f = passwordFile("later.pw", "L8tr");
    const ctx = ctxOf(withAuth(f));
    chmodSync(f, 0o644);
    assert.throws(
      () => keepalivedFiles(ctx.hosts[0], ctx),
      (e: unknown) => e instanceof ConfigError && /spec\.ha\.authentication\.passwordFile: .*has mode 0644/.test(e.message) && !e.message.includes("L8tr"),
    );
  });
});

// ---------------------------------------------------------------------------------------------
// The real keepalived, one per network namespace.

const canRun = process.getuid?.() === 0 && existsSync("/usr/sbin/keepalived") && spawnSync("ip", ["-V"]).status === 0;
const tag = String(process.pid);
const NS = { a: `kpt-vrrp-a-${tag}`, b: `kpt-vrrp-b-${tag}`, s: `kpt-vrrp-s-${tag}` };
type Side = "a" | "b";
/** The bridge port (in namespace s) of a side's veth. */
const port = (side: Side) => `kpw${tag}${side}`;
const isolate = (on: boolean) => {
  for (const side of ["a", "b"] as Side[]) ip("-n", NS.s, "link", "set", "dev", port(side), "type", "bridge_slave", "isolated", on ? "on" : "off");
};

interface Daemon {
  child: ChildProcess;
  log: string[];
  files: { main: string; vrrp: string; checkers: string };
}
const running = new Map<Side, Daemon>();

function ip(...args: string[]): string {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr.trim()}`);
  return r.stdout;
}

const holdsVIP = (side: Side) => ip("-n", NS[side], "-4", "-o", "addr", "show", "dev", "eth0").includes(` ${VIP}/32 `);
const holders = () => (["a", "b"] as Side[]).filter(holdsVIP);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** keepalived in the side's namespace, in the foreground, logging to the console (collected). */
function startKeepalived(side: Side, config: string): Daemon {
  const base = join(dir, `ka-${side}`);
  const conf = `${base}.conf`;
  // The track script is the one line changed: /bin/true stands in for the API server check.
  writeFileSync(conf, config.replace(KEEPALIVED_CHECK_SCRIPT, "/bin/true"), { mode: 0o600 });
  const files = { main: `${base}.pid`, vrrp: `${base}-vrrp.pid`, checkers: `${base}-checkers.pid` };
  for (const f of Object.values(files)) rmSync(f, { force: true });
  // stdbuf: keepalived's console log is block-buffered into a pipe; line by line, the test sees each line as it happens.
  const child = spawn("ip", ["netns", "exec", NS[side], "stdbuf", "-oL", "-eL", "/usr/sbin/keepalived", "-n", "-l", "-D", "-P", "-f", conf, "-p", files.main, "-r", files.vrrp, "-c", files.checkers], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  const log: string[] = [];
  for (const s of [child.stdout!, child.stderr!]) s.on("data", (d: Buffer) => log.push(...d.toString("utf8").split("\n").filter(Boolean)));
  const d = { child, log, files };
  running.set(side, d);
  return d;
}

/** Every PID of a daemon we started: the process we spawned and the VRRP child from its pid file. */
function pidsOf(d: Daemon): number[] {
  const pids = d.child.pid ? [d.child.pid] : [];
  if (existsSync(d.files.vrrp)) {
    const p = Number(readFileSync(d.files.vrrp, "utf8").trim());
    if (p > 0) pids.unshift(p);
  }
  return pids;
}

async function stop(side: Side, signal: NodeJS.Signals): Promise<void> {
  const d = running.get(side);
  if (!d) return;
  running.delete(side);
  for (const p of pidsOf(d)) {
    try {
      process.kill(p, signal);
    } catch {
      /* already gone */
    }
  }
  if (d.child.exitCode === null && d.child.signalCode === null) await new Promise((r) => d.child.once("exit", r));
}

async function waitFor(what: string, cond: () => boolean, ms: number): Promise<number> {
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    if (cond()) return Date.now() - t0;
    await sleep(50);
  }
  throw new Error(`not within ${ms / 1000} s: ${what}; holders: ${holders().join(",") || "none"}\n--- a:\n${running.get("a")?.log.join("\n")}\n--- b:\n${running.get("b")?.log.join("\n")}`);
}

/** Samples the holders for `ms`: the list of distinct holder sets seen. */
async function sample(ms: number): Promise<string[]> {
  const seen = new Set<string>();
  const t0 = Date.now();
  while (Date.now() - t0 < ms) {
    seen.add(holders().join("+") || "none");
    await sleep(100);
  }
  return [...seen];
}

describe("keepalived with VRRP authentication, in two network namespaces", { skip: canRun ? false : "needs root, iproute2 and /usr/sbin/keepalived" }, () => {
  let same: { a: string; b: string };
  let different: { a: string; b: string };

  before(() => {
    // Two namespaces, each with eth0 (ha.interface's default) on a veth whose other end is a port
    // of a bridge in a third namespace: ports marked isolated keep their carrier but pass nothing
    // to each other, which splits the two daemons without taking an interface down.
    ip("netns", "add", NS.s);
    ip("-n", NS.s, "link", "add", "br0", "type", "bridge");
    ip("-n", NS.s, "link", "set", "br0", "up");
    for (const side of ["a", "b"] as Side[]) {
      ip("netns", "add", NS[side]);
      ip("link", "add", `kpv${tag}${side}`, "type", "veth", "peer", "name", port(side));
      ip("link", "set", port(side), "netns", NS.s);
      ip("-n", NS.s, "link", "set", port(side), "master", "br0", "up");
      ip("link", "set", `kpv${tag}${side}`, "netns", NS[side]);
      ip("-n", NS[side], "link", "set", `kpv${tag}${side}`, "name", "eth0");
      ip("-n", NS[side], "addr", "add", `${NET}.${side === "a" ? 1 : 2}/24`, "dev", "eth0");
      ip("-n", NS[side], "link", "set", "eth0", "up");
      ip("-n", NS[side], "link", "set", "lo", "up");
    }
    // Permanent neighbour entries: while the ports are isolated ARP fails, and a failed entry
    // would delay the first adverts after the join by the kernel's ARP retries.
    const mac = (side: Side) => (JSON.parse(ip("-j", "-n", NS[side], "link", "show", "eth0")) as Array<{ address: string }>)[0].address;
    ip("-n", NS.a, "neigh", "replace", `${NET}.2`, "lladdr", mac("b"), "dev", "eth0", "nud", "permanent");
    ip("-n", NS.b, "neigh", "replace", `${NET}.1`, "lladdr", mac("a"), "dev", "eth0", "nud", "permanent");
    const render = (file: string, host: number) => {
      const c = parseClusterText(withAuth(file), join(dir, "cluster.yaml"));
      return renderKeepalivedConfig(c, cps[host], cps, readFileSync(file, "utf8").trim());
    };
    const one = passwordFile("real-1.pw", "0neP4ss\n");
    const two = passwordFile("real-2.pw", "tw0P4ss\n");
    same = { a: render(one, 0), b: render(one, 1) };
    different = { a: render(one, 0), b: render(two, 1) };
  });

  after(async () => {
    await stop("a", "SIGKILL");
    await stop("b", "SIGKILL");
    for (const ns of Object.values(NS)) {
      // Anything still running in our own namespaces was started by this test.
      const left = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout?.split("\n").map(Number).filter((p) => p > 0) ?? [];
      for (const p of left) {
        try {
          process.kill(p, "SIGKILL");
        } catch {
          /* gone */
        }
      }
      spawnSync("ip", ["netns", "del", ns]);
    }
  });

  const logHas = (side: Side, re: RegExp) => running.get(side)!.log.some((l) => re.test(l));
  const bothLogs = () => `--- a:\n${running.get("a")?.log.join("\n")}\n--- b:\n${running.get("b")?.log.join("\n")}`;

  test("same password: exactly one holds the VIP; killing it moves the VIP to the other", async (t) => {
    startKeepalived("a", same.a);
    startKeepalived("b", same.b);
    const first = await waitFor("one namespace holds the VIP", () => holders().length === 1, 15_000);
    t.diagnostic(`first holder after ${(first / 1000).toFixed(1)} s: ${holders()[0]}`);
    // Started together, both may time out in the same instant; the lower priority steps back at the first advert it hears.
    await sleep(2_000);
    const steady = await sample(4_000);
    assert.equal(steady.length, 1, `one holder for 4 adverts: ${steady.join(" then ")}`);
    assert.equal(holders().length, 1, steady.join(" then "));
    const holder = holders()[0] as Side;
    const other: Side = holder === "a" ? "b" : "a";
    await waitFor(`${holder} logged MASTER`, () => logHas(holder, /Entering MASTER STATE/), 2_000);
    assert.ok(logHas(other, /Entering BACKUP STATE/), bothLogs());
    assert.ok(!logHas("a", /passw/i) && !logHas("b", /passw/i), `no password complaint\n${bothLogs()}`);

    // A crash, not a shutdown: SIGKILL sends no last advert with priority 0, so the backup must notice the silence.
    await stop(holder, "SIGKILL");
    const t0 = Date.now();
    await waitFor(`${other} takes the VIP`, () => holdsVIP(other), 8_000);
    const took = (Date.now() - t0) / 1000;
    t.diagnostic(`failover after SIGKILL of the holder: ${took.toFixed(2)} s (3 x advert_int 1 s + skew)`);
    assert.ok(took >= 2.5, `took ${took} s: faster than 3 adverts, so the adverts were not what kept it backup`);
    assert.ok(took <= 5, `took ${took} s`);
    await waitFor(`${other} logged MASTER`, () => logHas(other, /Entering MASTER STATE/), 2_000);
    await stop(other, "SIGTERM");
  });

  /**
   * Both daemons started while their bridge ports are isolated: neither hears the other, so both
   * become master and hold the VIP. Then the ports are joined.
   */
  async function startApartThenJoin(config: { a: string; b: string }): Promise<void> {
    for (const side of ["a", "b"] as Side[]) if (holdsVIP(side)) ip("-n", NS[side], "addr", "del", `${VIP}/32`, "dev", "eth0");
    isolate(true);
    startKeepalived("a", config.a);
    startKeepalived("b", config.b);
    await waitFor("both namespaces hold the VIP while apart", () => holders().length === 2, 15_000);
    await sleep(1_000);
    isolate(false);
  }

  test("same password: two masters that start apart settle on one holder once they hear each other", async (t) => {
    await startApartThenJoin(same);
    const t0 = Date.now();
    await waitFor("b (priority 149) steps back", () => logHas("b", /Entering BACKUP STATE/) && holders().join() === "a", 15_000);
    t.diagnostic(`one holder ${((Date.now() - t0) / 1000).toFixed(1)} s after the join`);
    assert.deepEqual(await sample(3_000), ["a"], "a (priority 150) keeps the VIP");
    assert.ok(!logHas("a", /passw/i) && !logHas("b", /passw/i), `no password complaint\n${bothLogs()}`);
    await stop("a", "SIGTERM");
    await stop("b", "SIGTERM");
  });

  test("different passwords: adverts are refused for their password, so both keep the VIP", async (t) => {
    await startApartThenJoin(different);
    // With one password, b (priority 149) steps back within a second of hearing a (150), as in
    // the test before. Here adverts arrive and are refused: keepalived logs that on whichever side
    // first hears the other (in some runs only one side logs it for a while), and for 4 adverts
    // more the VIP stays on both.
    const seen = new Set<string>();
    const t0 = Date.now();
    await waitFor("an advert refused for its password", () => {
      seen.add(holders().join("+") || "none");
      return logHas("a", /received an invalid passwd/) || logHas("b", /received an invalid passwd/);
    }, 15_000);
    t.diagnostic(`first advert refused ${((Date.now() - t0) / 1000).toFixed(1)} s after the join`);
    for (const h of await sample(4_000)) seen.add(h);
    assert.deepEqual([...seen], ["a+b"], `both hold the VIP all along\n${bothLogs()}`);
    for (const side of ["a", "b"] as Side[]) {
      const lastState = running.get(side)!.log.filter((l) => /Entering \w+ STATE/.test(l)).pop() ?? "";
      assert.match(lastState, /MASTER/, `${side} stepped back\n${bothLogs()}`);
      const refused = running.get(side)!.log.filter((l) => /received an invalid passwd/.test(l));
      t.diagnostic(`${side}: ${refused.length} adverts refused${refused.length ? `, e.g. ${refused[0]}` : ""}`);
    }
    await stop("a", "SIGTERM");
    await stop("b", "SIGTERM");
  });
});
