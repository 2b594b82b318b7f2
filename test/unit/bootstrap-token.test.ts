// Bootstrap token format, TTL parsing and the Secret kubeprov writes for a token.
import { test } from "node:test";
import assert from "node:assert/strict";
import {
  DEFAULT_TOKEN_GROUP,
  formatTtl,
  generateToken,
  isUsableJoinToken,
  parseDuration,
  parseToken,
  parseTokenSecret,
  requireToken,
  tokenSecret,
  TOKEN_PATTERN,
} from "../../provisioner/bootstrap/token.js";
import { UsageError } from "../../provisioner/errors.js";
import { dnsServiceIP, apiServiceIP } from "../../provisioner/bootstrap/net.js";
import { nthAddress } from "../../provisioner/spec/cidr.js";

test("generated tokens match [a-z0-9]{6}.[a-z0-9]{16} and differ", () => {
  const seen = new Set<string>();
  for (let i = 0; i < 200; i++) {
    const t = generateToken();
    const s = `${t.id}.${t.secret}`;
    assert.match(s, TOKEN_PATTERN);
    seen.add(s);
  }
  assert.equal(seen.size, 200);
});

test("parseToken / requireToken: the format is enforced and the bad value is not echoed", () => {
  assert.deepEqual(parseToken("abcdef.0123456789abcdef"), { id: "abcdef", secret: "0123456789abcdef" });
  for (const bad of ["abcdef.0123456789abcde", "ABCDEF.0123456789abcdef", "abcdef:0123456789abcdef", " abcdef.0123456789abcdef", "abcdefg.123456789abcdef"]) {
    assert.equal(parseToken(bad), undefined, bad);
    assert.throws(
      () => requireToken(bad),
      (e: unknown) => e instanceof UsageError && e.exitCode === 2 && !e.message.includes(bad.trim()),
    );
  }
});

test("parseDuration reads Go durations; 0 is forever; junk is a UsageError", () => {
  assert.equal(parseDuration("24h"), 86_400_000);
  assert.equal(parseDuration("1h30m"), 5_400_000);
  assert.equal(parseDuration("90s"), 90_000);
  assert.equal(parseDuration("0"), 0);
  assert.equal(parseDuration("0s"), 0);
  for (const bad of ["", "1d", "h", "24", "-1h", "1h x"]) assert.throws(() => parseDuration(bad), UsageError, bad);
});

test("the token Secret carries the fields the bootstrap authenticator reads", () => {
  const now = new Date("2026-11-24T09:00:00.000Z");
  const s = tokenSecret({ id: "abcdef", secret: "0123456789abcdef" }, { ttlMs: 86_400_000, now, description: "for tests" }) as {
    metadata: { name: string; namespace: string };
    type: string;
    data: Record<string, string>;
  };
  assert.equal(s.metadata.name, "bootstrap-token-abcdef");
  assert.equal(s.metadata.namespace, "kube-system");
  assert.equal(s.type, "bootstrap.kubernetes.io/token");
  const d = Object.fromEntries(Object.entries(s.data).map(([k, v]) => [k, Buffer.from(v, "base64").toString()]));
  assert.deepEqual(d, {
    "token-id": "abcdef",
    "token-secret": "0123456789abcdef",
    expiration: "2026-11-25T09:00:00Z",
    "usage-bootstrap-authentication": "true",
    "usage-bootstrap-signing": "true",
    "auth-extra-groups": DEFAULT_TOKEN_GROUP,
    description: "for tests",
  });
  const info = parseTokenSecret(s)!;
  assert.equal(info.id, "abcdef");
  assert.equal(info.expires?.toISOString(), "2026-11-25T09:00:00.000Z");
  assert.equal(isUsableJoinToken(info, now), true);
  assert.equal(isUsableJoinToken(info, new Date("2026-11-25T09:00:01Z")), false, "expired");
  assert.equal(formatTtl(info, now), "24h0m");
});

test("ttl 0 writes no expiration: the token never expires", () => {
  const s = tokenSecret({ id: "abcdef", secret: "0123456789abcdef" }, { ttlMs: 0 }) as { data: Record<string, string> };
  assert.equal(s.data.expiration, undefined);
  const info = parseTokenSecret(s)!;
  assert.equal(info.expires, undefined);
  assert.equal(isUsableJoinToken(info, new Date("2100-01-01T00:00:00Z")), true);
  assert.equal(formatTtl(info), "<forever>");
});

test("service addresses: kubernetes is the 1st, kube-dns the 10th of the service subnet", () => {
  assert.equal(apiServiceIP("10.96.0.0/12"), "10.96.0.1");
  assert.equal(dnsServiceIP("10.96.0.0/12"), "10.96.0.10");
  assert.equal(dnsServiceIP("172.20.5.0/24"), "172.20.5.10");
  assert.equal(nthAddress("10.244.3.0/24", 1), "10.244.3.1");
  assert.throws(() => nthAddress("10.0.0.0/30", 10));
});

test("token create: a bad TOKEN or --ttl exits 2 before any cluster is looked up", async () => {
  const { run } = await import("../../provisioner/cli/main.js");
  const capture = async (argv: string[]) => {
    let err = "";
    const orig = process.stderr.write.bind(process.stderr);
    (process.stderr as { write: unknown }).write = (s: string | Uint8Array) => ((err += String(s)), true);
    try {
      return { code: await run(argv), err };
    } finally {
      (process.stderr as { write: unknown }).write = orig;
    }
  };
  // The cluster named here does not exist: the token is refused first, so that is never noticed.
  const bad = await capture(["token", "create", "--name", "kpt-no-such-cluster", "Bad.Token-value"]);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /TOKEN: a bootstrap token must match/);
  assert.doesNotMatch(bad.err, /Bad\.Token-value/);
  const ttl = await capture(["token", "create", "--name", "kpt-no-such-cluster", "--ttl", "tomorrow"]);
  assert.equal(ttl.code, 2);
  assert.match(ttl.err, /--ttl "tomorrow"/);
  const del = await capture(["token", "delete", "--name", "kpt-no-such-cluster", "nope"]);
  assert.equal(del.code, 2);
});
