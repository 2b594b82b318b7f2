// RSA keys. Private keys are written as PKCS#1 "RSA PRIVATE KEY", as kubeadm does; node-forge gets
// the public key for the certificates it builds.
//
// Two generators, both on the platform's native crypto (OpenSSL):
// - "openssl" (default): node:crypto's async generateKeyPair on libuv's thread pool, so the keys of
//   a run are made in parallel. OpenSSL's own RSA key generation (constant-time arithmetic on the
//   secret primes).
// - "primes" (opt-in: KUBEPROV_PKI_KEYGEN=primes, or setKeyGenerator): random odd candidates from
//   the CSPRNG with the two top bits set, sieved by the first 2048 odd primes, each survivor tested
//   by OpenSSL's Miller-Rabin through crypto.checkPrime (OpenSSL 3 runs at least 64 rounds on
//   1024-bit numbers whatever is asked) — Go's crypto/rand.Prime method. The key is assembled from
//   p, q (|p-q| > 2^(bits/2-100), gcd(e, p-1) = gcd(e, q-1) = 1, d = e^-1 mod lcm(p-1, q-1),
//   d > 2^(bits/2)), imported by OpenSSL (JWK) and checked with a sign/verify round trip. It is
//   2-3x faster here because checkPrime's modular exponentiation is not the constant-time one
//   OpenSSL uses on secret primes: a timing side channel on the machine that generates the keys,
//   which is why it is not the default.
//
// Keys can be generated ahead of need (prepareKeys): a run asks for them once it has read a node's
// PKI, and newRsaKey hands them out before generating new ones.
import { checkPrime, createPrivateKey, createPublicKey, generateKeyPair, randomBytes, sign, verify, type KeyObject } from "node:crypto";
import { availableParallelism } from "node:os";
import forge from "node-forge";

export type KeyGenerator = "primes" | "openssl";
let generator: KeyGenerator = process.env.KUBEPROV_PKI_KEYGEN === "primes" ? "primes" : "openssl";
/** For the benchmark and tests: choose the RSA key generator. */
export function setKeyGenerator(g: KeyGenerator): void {
  generator = g;
}

const E = 65537n;
/** The first 2048 odd primes (as numbers and as bigints), made on first use: every CLI start would pay for them otherwise. */
let sieve: { small: number[]; big: bigint[] } | undefined;
function smallPrimes(): { small: number[]; big: bigint[] } {
  if (!sieve) {
    const small: number[] = [];
    for (let n = 3; small.length < 2048; n += 2) if (small.every((p) => p * p > n || n % p !== 0)) small.push(n);
    sieve = { small, big: small.map(BigInt) };
  }
  return sieve;
}

function isProbablePrime(c: bigint): Promise<boolean> {
  return new Promise((resolve, reject) => checkPrime(c, { checks: 20 }, (err, ok) => (err ? reject(err) : resolve(ok))));
}

/** A random prime of exactly `bits` bits with the two top bits set and p-1 coprime with e. */
async function randomPrime(bits: number): Promise<bigint> {
  const { small: SIEVE, big: SIEVE_BIG } = smallPrimes();
  for (;;) {
    const b = randomBytes(bits / 8);
    b[0] = b[0]! | 0xc0;
    b[b.length - 1] = b[b.length - 1]! | 1;
    const base = BigInt(`0x${b.toString("hex")}`);
    const residues = SIEVE_BIG.map((p) => Number(base % p));
    for (let delta = 0; delta < 1 << 16; delta += 2) {
      let divisible = false;
      for (let i = 0; i < SIEVE.length; i++) {
        if ((residues[i]! + delta) % SIEVE[i]! === 0) {
          divisible = true;
          break;
        }
      }
      if (divisible) continue;
      const c = base + BigInt(delta);
      if (c >> BigInt(bits) !== 0n) break;
      if ((c - 1n) % E === 0n) continue;
      if (await isProbablePrime(c)) return c;
    }
  }
}

function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1] = [((a % m) + m) % m, m];
  let [s0, s1] = [1n, 0n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  if (r0 !== 1n) throw new Error("not invertible");
  return ((s0 % m) + m) % m;
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

const b64u = (x: bigint): string => {
  let h = x.toString(16);
  if (h.length % 2) h = `0${h}`;
  return Buffer.from(h, "hex").toString("base64url");
};

async function rsaFromPrimes(bits: number): Promise<KeyObject> {
  for (;;) {
    const [a, b] = await Promise.all([randomPrime(bits / 2), randomPrime(bits / 2)]);
    const [p, q] = a > b ? [a, b] : [b, a];
    if (p - q < 1n << BigInt(bits / 2 - 100)) continue;
    const n = p * q;
    if (n.toString(2).length !== bits) continue;
    const lambda = ((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n);
    const d = modInverse(E, lambda);
    if (d <= 1n << BigInt(bits / 2)) continue;
    const key = createPrivateKey({
      format: "jwk",
      key: { kty: "RSA", n: b64u(n), e: b64u(E), d: b64u(d), p: b64u(p), q: b64u(q), dp: b64u(d % (p - 1n)), dq: b64u(d % (q - 1n)), qi: b64u(modInverse(q, p)) },
    });
    const probe = randomBytes(32);
    if (!verify("sha256", probe, createPublicKey(key), sign("sha256", probe, key))) throw new Error("generated RSA key failed its sign/verify check");
    return key;
  }
}

function opensslKey(bits: number): Promise<KeyObject> {
  return new Promise((resolve, reject) =>
    generateKeyPair("rsa", { modulusLength: bits, publicExponent: 0x10001 }, (err, _pub, priv) => (err ? reject(err) : resolve(priv))),
  );
}

export interface RsaKey {
  /** Native key, used for signing and for checks. */
  privateKey: KeyObject;
  /** PEM, PKCS#1 ("RSA PRIVATE KEY"). */
  privatePem: string;
  /** SubjectPublicKeyInfo PEM ("PUBLIC KEY"), as sa.pub. */
  publicPem: string;
  /** node-forge public key, for certificate building. */
  forgePublic: forge.pki.rsa.PublicKey;
}

function generate(bits: number): Promise<KeyObject> {
  counts.generated++;
  return generator === "openssl" ? opensslKey(bits) : rsaFromPrimes(bits);
}

// Keys generated ahead of need. A run knows early (once it has read a host's PKI) how many keys it
// will create, long before it gets to the task that creates them; generating them meanwhile takes
// RSA key generation (about 0.1 s of CPU per 2048-bit key with OpenSSL) off the critical path. The
// keys are held in this process's memory only and handed out once each, oldest first; newRsaKey
// takes one when there is one and generates otherwise. At most one generation per CPU runs ahead, so
// the work in front of it keeps going.
interface Ahead {
  /** Generations started ahead and not yet handed out (settled or not), oldest first. */
  started: Array<Promise<KeyObject>>;
  /** What each prepareKeys call still wants started; a request whose run ended (signal aborted) is dropped. */
  requests: Array<{ left: number; signal?: AbortSignal }>;
}
const ahead = new Map<number, Ahead>();
let aheadRunning = 0;
/** Since the process started: generations started (ahead or not), and keys handed out that were started ahead. */
const counts = { generated: 0, takenAhead: 0 };
const AHEAD_PARALLEL = Math.max(1, availableParallelism());

/** The oldest request that still wants a key started (dropping the spent and the aborted). */
function nextRequest(a: Ahead): { left: number } | undefined {
  while (a.requests.length && (a.requests[0]!.left <= 0 || a.requests[0]!.signal?.aborted)) a.requests.shift();
  return a.requests[0];
}

function pumpAhead(): void {
  for (const [bits, a] of ahead) {
    for (let r = nextRequest(a); r && aheadRunning < AHEAD_PARALLEL; r = nextRequest(a)) {
      r.left--;
      aheadRunning++;
      const key = generate(bits);
      // A failure surfaces when the key is taken (newRsaKey awaits it), not as an unhandled rejection here.
      key.catch(() => {}).finally(() => {
        aheadRunning--;
        pumpAhead();
      });
      a.started.push(key);
    }
  }
}

/**
 * Starts generating `count` keys of `bits` bits ahead of need, a few at a time. When `signal` aborts
 * (the run ended), generations not started yet are dropped; the ones started stay available.
 */
export function prepareKeys(bits: number, count: number, signal?: AbortSignal): void {
  if (count <= 0 || signal?.aborted) return;
  let a = ahead.get(bits);
  if (!a) ahead.set(bits, (a = { started: [], requests: [] }));
  a.requests.push({ left: count, signal });
  pumpAhead();
}

/**
 * For tests and the benchmark: keys of `bits` bits started ahead and not handed out, generations
 * still wanted ahead, and the process's totals (generations started, keys handed out from ahead).
 */
export function preparedKeys(bits: number): { started: number; queued: number; generated: number; takenAhead: number } {
  const a = ahead.get(bits);
  const queued = a ? a.requests.filter((r) => !r.signal?.aborted).reduce((n, r) => n + Math.max(0, r.left), 0) : 0;
  return { started: a?.started.length ?? 0, queued, ...counts };
}

/** A key started ahead, else a new one (a generation still wanted ahead is one fewer). */
function takeKey(bits: number): Promise<KeyObject> {
  const a = ahead.get(bits);
  const started = a?.started.shift();
  if (started) {
    counts.takenAhead++;
    return started;
  }
  const r = a && nextRequest(a);
  if (r) r.left--;
  return generate(bits);
}

export async function newRsaKey(bits: number): Promise<RsaKey> {
  const privateKey = await takeKey(bits);
  const privatePem = privateKey.export({ type: "pkcs1", format: "pem" }).toString();
  const publicPem = createPublicKey(privateKey).export({ type: "spki", format: "pem" }).toString();
  return { privateKey, privatePem, publicPem, forgePublic: forge.pki.publicKeyFromPem(publicPem) as forge.pki.rsa.PublicKey };
}

/** Parses an existing private key (PKCS#1 or PKCS#8 PEM). Throws a plain Error describing the problem. */
export function parsePrivateKey(pem: Buffer | string): KeyObject {
  try {
    return createPrivateKey(pem);
  } catch {
    throw new Error("is not a PEM private key");
  }
}

/** An existing RSA key in the same form newRsaKey returns (for signing with an existing CA key). */
export function rsaKeyFrom(pem: Buffer | string): RsaKey {
  const privateKey = parsePrivateKey(pem);
  if (privateKey.asymmetricKeyType !== "rsa") throw new Error(`is a ${privateKey.asymmetricKeyType} key; kubeprov signs with RSA keys only`);
  const publicPem = createPublicKey(privateKey).export({ type: "spki", format: "pem" }).toString();
  return {
    privateKey,
    privatePem: privateKey.export({ type: "pkcs1", format: "pem" }).toString(),
    publicPem,
    forgePublic: forge.pki.publicKeyFromPem(publicPem) as forge.pki.rsa.PublicKey,
  };
}
