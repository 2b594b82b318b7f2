// Detached JWS (RFC 7515 appendix F) over the cluster-info kubeconfig, as the bootstrap signer
// of Kubernetes computes it: HS256, protected header {"alg":"HS256","kid":"<token-id>"}, the
// HMAC key is the token's secret part, and the compact form has its payload left out
// ("<header>..<signature>"). A joining node that knows the token checks that the unauthenticated
// cluster-info it read was published by someone who knows the token too.
import { createHmac, timingSafeEqual } from "node:crypto";
import { parseToken } from "./token.js";

function b64url(data: string | Buffer): string {
  return Buffer.from(data).toString("base64url");
}

/** The protected header exactly as Go's JOSE library serializes it (keys sorted). */
export function jwsHeader(tokenId: string): string {
  return JSON.stringify({ alg: "HS256", kid: tokenId });
}

function signature(headerB64: string, payload: string, secret: string): Buffer {
  return createHmac("sha256", secret).update(`${headerB64}.${b64url(payload)}`).digest();
}

/** Sign `payload` with a bootstrap token ("id.secret"); returns "<header>..<signature>". */
export function signDetachedJws(payload: string, token: string): string {
  const t = parseToken(token);
  if (!t) throw new Error("not a bootstrap token (expected [a-z0-9]{6}.[a-z0-9]{16})");
  const header = b64url(jwsHeader(t.id));
  return `${header}..${signature(header, payload, t.secret).toString("base64url")}`;
}

/**
 * true when `jws` is a detached HS256 signature of `payload` made with `token`: the header must
 * name HS256 and the token's id, and the HMAC must match (compared in constant time).
 */
export function verifyDetachedJws(jws: string, payload: string, token: string): boolean {
  const t = parseToken(token);
  if (!t) return false;
  const parts = jws.split(".");
  if (parts.length !== 3 || parts[1] !== "") return false;
  const [headerB64, , sigB64] = parts;
  let header: { alg?: unknown; kid?: unknown };
  try {
    header = JSON.parse(Buffer.from(headerB64, "base64url").toString("utf8")) as typeof header;
  } catch {
    return false;
  }
  if (header.alg !== "HS256" || header.kid !== t.id) return false;
  const want = signature(headerB64, payload, t.secret);
  const got = Buffer.from(sigB64, "base64url");
  return got.length === want.length && timingSafeEqual(got, want);
}
