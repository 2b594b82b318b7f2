// The detached JWS over cluster-info, checked against an HMAC computed independently by openssl.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { signDetachedJws, verifyDetachedJws, jwsHeader } from "../../provisioner/bootstrap/jws.js";

const TOKEN = "abcdef.0123456789abcdef";
const PAYLOAD = "apiVersion: v1\nclusters:\n- cluster:\n    server: https://10.213.0.2:6443\n  name: \"\"\nkind: Config\n";

function opensslHs256(input: string, key: string): string {
  // openssl prints the raw MAC with -binary; base64url it ourselves.
  const mac = execFileSync("openssl", ["dgst", "-sha256", "-hmac", key, "-binary"], { input });
  return mac.toString("base64").replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

test("the header is Go JOSE's serialization: alg then kid", () => {
  assert.equal(jwsHeader("abcdef"), '{"alg":"HS256","kid":"abcdef"}');
});

test("signature equals openssl's HMAC-SHA256 keyed with the token secret over header.payload", () => {
  const jws = signDetachedJws(PAYLOAD, TOKEN);
  const [h, p, s] = jws.split(".");
  assert.equal(p, "", "payload is detached");
  assert.equal(Buffer.from(h, "base64url").toString(), '{"alg":"HS256","kid":"abcdef"}');
  const signingInput = `${h}.${Buffer.from(PAYLOAD).toString("base64url")}`;
  assert.equal(s, opensslHs256(signingInput, "0123456789abcdef"));
  // A known vector (computed once with openssl, kept here so a change in encoding shows up).
  assert.match(jws, /^eyJhbGciOiJIUzI1NiIsImtpZCI6ImFiY2RlZiJ9\.\.[A-Za-z0-9_-]{43}$/);
});

test("verify accepts the signature and rejects another token, payload, kid or algorithm", () => {
  const jws = signDetachedJws(PAYLOAD, TOKEN);
  assert.equal(verifyDetachedJws(jws, PAYLOAD, TOKEN), true);
  assert.equal(verifyDetachedJws(jws, PAYLOAD + " ", TOKEN), false);
  assert.equal(verifyDetachedJws(jws, PAYLOAD, "abcdef.0123456789abcdeg"), false);
  assert.equal(verifyDetachedJws(jws, PAYLOAD, "abcdeg.0123456789abcdef"), false, "kid must name the token id");
  const [, , s] = jws.split(".");
  const none = Buffer.from('{"alg":"none","kid":"abcdef"}').toString("base64url");
  assert.equal(verifyDetachedJws(`${none}..${s}`, PAYLOAD, TOKEN), false);
  assert.equal(verifyDetachedJws(jws.replace("..", ".x."), PAYLOAD, TOKEN), false, "an attached payload is not a detached JWS");
  assert.equal(verifyDetachedJws("garbage", PAYLOAD, TOKEN), false);
});

test("signing refuses a malformed token", () => {
  assert.throws(() => signDetachedJws(PAYLOAD, "ABCDEF.0123456789abcdef"));
  assert.throws(() => signDetachedJws(PAYLOAD, "abcdef0123456789abcdef"));
});
