// Deciding, without touching anything, what to do with every entry of the table on one node:
// keep it, create it, re-issue it from the same CA, or copy it from the first control plane, and
// which existing files make the whole run an error. Pure: a snapshot of the files in, a plan out.
import { posix } from "node:path";
import {
  CAS,
  KUBECONFIGS,
  LEAVES,
  SERVICE_ACCOUNT_KEY,
  caSpec,
  certPath,
  kubeconfigPath,
  type CAName,
  type CASpec,
  type KubeconfigSpec,
  type LeafSpec,
  type PkiContext,
} from "./certlist.js";
import { keyMatches, parseCert, publicKeyMatches, signedBy, subjectDifferences, type CertInfo } from "./inspect.js";
import { parsePrivateKey } from "./keys.js";
import { parseKubeconfig } from "./kubeconfig.js";

/** Existing files by absolute path: content, undefined when absent, or an Error when unreadable. */
export type Snapshot = Map<string, Buffer | undefined | Error>;

export type Action = "keep" | "create" | "reissue" | "copy";

export interface Decision {
  /** Table name: "ca", "apiserver", "sa", "admin.conf"… */
  name: string;
  kind: "ca" | "leaf" | "keypair" | "kubeconfig";
  action: Action;
  reason: string;
  /** The files this entry owns on the node. */
  paths: string[];
  /** For leaves and kubeconfigs: the issuing CA. */
  ca?: CAName;
}

export interface CAState {
  spec: CASpec;
  /** Present (kept or copied) certificate; undefined when it will be created. */
  cert?: CertInfo;
  /** PEM of the key when available (absent: external CA mode). */
  keyPem?: Buffer;
  /** The CA is unusable (an error was recorded). */
  broken?: boolean;
}

export interface PkiPlan {
  ctx: PkiContext;
  now: Date;
  decisions: Decision[];
  /** When not empty, nothing may be written. */
  errors: string[];
  warnings: string[];
  cas: Map<CAName, CAState>;
  /** Material to copy (from the first control plane), by absolute path on this node. */
  copies: Map<string, Buffer>;
  /** The existing sa.key, when sa.pub must be derived from it. */
  saKeyPem?: Buffer;
  /** Kept files whose permissions are wrong (e.g. a key readable by all): chmod them. */
  modeFixes: { path: string; from: number; to: number }[];
}

/** The mode a file of the table must have: keys, sa.pub and kubeconfigs 0600, certificates 0644. */
export function wantedMode(path: string): number {
  return path.endsWith(".crt") ? 0o644 : 0o600;
}

/** Records the kept files whose mode differs from the table's. */
export function planModeFixes(plan: PkiPlan, modes: Map<string, number>): void {
  for (const d of plan.decisions) {
    if (d.action !== "keep") continue;
    for (const p of d.paths) {
      const m = modes.get(p);
      if (m !== undefined && m !== wantedMode(p)) plan.modeFixes.push({ path: p, from: m, to: wantedMode(p) });
    }
  }
}

/** CA certificates and keys (and sa.key/sa.pub) of the first control plane, by path relative to the cert dir. */
export type SharedCaSet = Map<string, Buffer>;

/** Relative paths (under the cert dir) of the material all control planes share. */
export function sharedRelPaths(): string[] {
  return [...CAS.flatMap((c) => [`${c.baseName}.crt`, `${c.baseName}.key`]), "sa.key", "sa.pub"];
}

export interface PlanOptions {
  now?: Date;
  /** Material from the first control plane; this node's CAs must be the same (copied when absent). */
  shared?: SharedCaSet;
  /** Re-issue these leaves/kubeconfigs even when valid ("all" = every one). */
  renew?: Set<string> | "all";
  /** Which parts of the table to plan (default both). */
  certs?: boolean;
  kubeconfigs?: boolean;
  /** The part of the table this node holds (default: all of it, a control plane's). */
  part?: PkiPart;
  /**
   * CAs whose key (from `shared`) signs this node's leaves but is not written on it: with external
   * etcd a control plane holds the etcd CA certificate only, as kubeadm's external etcd layout.
   */
  signOnly?: readonly CAName[];
}

/** A subset of the table: which CAs, which leaves, and whether the service account key pair. */
export interface PkiPart {
  cas: readonly CAName[];
  leaves: readonly string[];
  serviceAccount: boolean;
}

const casOf = (opts: Pick<PlanOptions, "part">): readonly CASpec[] => (opts.part ? CAS.filter((c) => opts.part!.cas.includes(c.name)) : CAS);
const leavesOf = (opts: Pick<PlanOptions, "part">): readonly LeafSpec[] => (opts.part ? LEAVES.filter((l) => opts.part!.leaves.includes(l.name)) : LEAVES);

const DAY = 86_400_000;

/** Every path the plan may read for this context. */
export function snapshotPaths(ctx: PkiContext, opts: Pick<PlanOptions, "certs" | "kubeconfigs" | "part"> = {}): string[] {
  const paths = [...casOf(opts).flatMap((c) => [certPath(ctx, c.baseName, "crt"), certPath(ctx, c.baseName, "key")])];
  if (opts.certs !== false) {
    paths.push(...leavesOf(opts).flatMap((l) => [certPath(ctx, l.baseName, "crt"), certPath(ctx, l.baseName, "key")]));
    if (opts.part?.serviceAccount !== false) paths.push(certPath(ctx, "sa", "key"), certPath(ctx, "sa", "pub"));
  }
  if (opts.kubeconfigs !== false) paths.push(...KUBECONFIGS.filter((k) => k.onNode(ctx)).map((k) => kubeconfigPath(ctx, k.name)));
  return paths;
}

export function planPki(ctx: PkiContext, snapshot: Snapshot, opts: PlanOptions = {}): PkiPlan {
  const now = opts.now ?? new Date();
  const plan: PkiPlan = { ctx, now, decisions: [], errors: [], warnings: [], cas: new Map(), copies: new Map(), modeFixes: [] };
  const renewWindowEnd = new Date(now.getTime() + ctx.renewBeforeDays * DAY);
  const wantRenew = (name: string) => opts.renew === "all" || (opts.renew?.has(name) ?? false);
  const get = (p: string): Buffer | undefined => {
    const v = snapshot.get(p);
    if (v instanceof Error) {
      plan.errors.push(`cannot read ${p}: ${v.message}`);
      return undefined;
    }
    return v;
  };
  const unreadable = (p: string) => snapshot.get(p) instanceof Error;

  const signOnly = (name: CAName) => opts.signOnly?.includes(name) ?? false;
  // CAs.
  for (const spec of casOf(opts)) {
    const crtPath = certPath(ctx, spec.baseName, "crt");
    const keyPath = certPath(ctx, spec.baseName, "key");
    const state: CAState = { spec };
    plan.cas.set(spec.name, state);
    const errorsBefore = plan.errors.length;
    const crt = get(crtPath);
    const key = get(keyPath);
    const sharedCrt = opts.shared?.get(`${spec.baseName}.crt`);
    const sharedKey = opts.shared?.get(`${spec.baseName}.key`);
    const paths = [crtPath, keyPath];
    if (plan.errors.length > errorsBefore) {
      state.broken = true;
      continue;
    }
    if (crt) {
      let info: CertInfo;
      try {
        info = parseCert(crt);
      } catch (e) {
        plan.errors.push(`${crtPath} ${(e as Error).message}; a CA is never replaced: fix or remove it`);
        state.broken = true;
        continue;
      }
      if (!info.isCA) {
        plan.errors.push(`${crtPath} is not a CA certificate (basicConstraints CA:FALSE)`);
        state.broken = true;
        continue;
      }
      if (info.notAfter <= now) {
        plan.errors.push(`${crtPath}: the ${spec.name} CA expired on ${info.notAfter.toISOString()}; kubeprov does not replace a CA`);
        state.broken = true;
        continue;
      }
      if (sharedCrt && !sharedCrt.equals(crt) && !sameCert(sharedCrt, info)) {
        plan.errors.push(`${crtPath} differs from the first control plane's ${spec.baseName}.crt; a CA is never replaced`);
        state.broken = true;
        continue;
      }
      state.cert = info;
      if (key) {
        let k;
        try {
          k = parsePrivateKey(key);
        } catch (e) {
          plan.errors.push(`${keyPath} ${(e as Error).message}`);
          state.broken = true;
          continue;
        }
        if (!keyMatches(info, k)) {
          plan.errors.push(`${keyPath} does not match ${crtPath} (different public keys); a CA is never replaced`);
          state.broken = true;
          continue;
        }
        state.keyPem = key;
        plan.decisions.push({ name: spec.name, kind: "ca", action: "keep", reason: `valid until ${day(info.notAfter)}`, paths });
      } else if (sharedKey && signOnly(spec.name)) {
        state.keyPem = sharedKey;
        plan.decisions.push({ name: spec.name, kind: "ca", action: "keep", reason: `valid until ${day(info.notAfter)}; its key signs here but stays off this node`, paths: [crtPath] });
      } else if (sharedKey) {
        state.keyPem = sharedKey;
        plan.copies.set(keyPath, sharedKey);
        plan.decisions.push({ name: spec.name, kind: "ca", action: "copy", reason: "CA key copied from the first control plane", paths: [keyPath] });
      } else {
        plan.decisions.push({ name: spec.name, kind: "ca", action: "keep", reason: `external CA (no ${posix.basename(keyPath)}): leaves must be provided`, paths: [crtPath] });
      }
    } else if (key) {
      plan.errors.push(`${keyPath} exists but ${crtPath} does not; supply the CA certificate or remove the key`);
      state.broken = true;
    } else if (sharedCrt) {
      try {
        state.cert = parseCert(sharedCrt);
      } catch (e) {
        plan.errors.push(`the first control plane's ${spec.baseName}.crt ${(e as Error).message}`);
        state.broken = true;
        continue;
      }
      plan.copies.set(crtPath, sharedCrt);
      if (sharedKey) state.keyPem = sharedKey;
      const keyCopied = sharedKey !== undefined && !signOnly(spec.name);
      if (keyCopied) plan.copies.set(keyPath, sharedKey);
      plan.decisions.push({ name: spec.name, kind: "ca", action: "copy", reason: keyCopied || !sharedKey ? "from the first control plane" : "certificate only (its key signs here but stays off this node)", paths: keyCopied ? paths : [crtPath] });
    } else {
      plan.decisions.push({ name: spec.name, kind: "ca", action: "create", reason: "no CA yet", paths });
    }
  }

  if (opts.certs !== false) {
    for (const leaf of leavesOf(opts)) planLeaf(plan, leaf, get, unreadable, renewWindowEnd, wantRenew(leaf.name));
    if (opts.part?.serviceAccount !== false) planServiceAccount(plan, get, opts.shared);
  }
  if (opts.kubeconfigs !== false) {
    for (const kc of KUBECONFIGS) if (kc.onNode(ctx)) planKubeconfig(plan, kc, get, renewWindowEnd, wantRenew(kc.name));
  }
  return plan;
}

function sameCert(pem: Buffer, info: CertInfo): boolean {
  try {
    return parseCert(pem).x509.raw.equals(info.x509.raw);
  } catch {
    return false;
  }
}

function day(d: Date): string {
  return d.toISOString().slice(0, 10);
}

type Getter = (p: string) => Buffer | undefined;

/** The decision for something signed by a CA, once its current state is known. */
function decideSigned(
  plan: PkiPlan,
  d: Omit<Decision, "action" | "reason">,
  ca: CAState,
  state: { missing?: string; mustReissue?: string; expiresAt?: Date },
  renewWindowEnd: Date,
  renew: boolean,
): void {
  const external = ca.cert !== undefined && ca.keyPem === undefined;
  const push = (action: Action, reason: string) => plan.decisions.push({ ...d, action, reason });
  if (state.missing) {
    if (external) plan.errors.push(`${d.paths[0]}: ${state.missing}, and the ${ca.spec.name} CA is external (no ${ca.spec.baseName}.key) so kubeprov cannot issue it: provide it`);
    else push("create", state.missing);
    return;
  }
  let reason = state.mustReissue;
  if (!reason && state.expiresAt && state.expiresAt <= plan.now) reason = `expired on ${state.expiresAt.toISOString()}`;
  if (!reason && state.expiresAt && state.expiresAt <= renewWindowEnd) {
    reason = `expires on ${day(state.expiresAt)}, within the renewal window (${plan.ctx.renewBeforeDays} days)`;
    if (external) {
      plan.warnings.push(`${d.paths[0]} ${reason}; the ${ca.spec.name} CA is external: renew it with that CA`);
      push("keep", `external CA; ${reason}`);
      return;
    }
  }
  if (!reason && renew) reason = "renewal requested";
  if (!reason) {
    push("keep", `valid until ${day(state.expiresAt!)}`);
    return;
  }
  if (external) {
    plan.errors.push(`${d.paths[0]}: ${reason}, and the ${ca.spec.name} CA is external (no ${ca.spec.baseName}.key) so kubeprov cannot re-issue it`);
    return;
  }
  push("reissue", reason);
}

function planLeaf(plan: PkiPlan, leaf: LeafSpec, get: Getter, unreadable: (p: string) => boolean, renewWindowEnd: Date, renew: boolean): void {
  const ctx = plan.ctx;
  const crtPath = certPath(ctx, leaf.baseName, "crt");
  const keyPath = certPath(ctx, leaf.baseName, "key");
  const ca = plan.cas.get(leaf.ca)!;
  const before = plan.errors.length;
  const crt = get(crtPath);
  const key = get(keyPath);
  if (plan.errors.length > before || ca.broken) return;
  const d = { name: leaf.name, kind: "leaf" as const, paths: [crtPath, keyPath], ca: leaf.ca };
  if (!crt) return decideSigned(plan, d, ca, { missing: "no certificate yet" }, renewWindowEnd, renew);
  let info: CertInfo;
  try {
    info = parseCert(crt);
  } catch (e) {
    plan.errors.push(`${crtPath} ${(e as Error).message}; fix or remove it`);
    return;
  }
  if (!ca.cert) {
    plan.errors.push(`${crtPath} exists but the ${leaf.ca} CA does not (${caSpec(leaf.ca).baseName}.crt): it would be signed by a new CA; remove it or provide the CA`);
    return;
  }
  if (!signedBy(info, ca.cert)) {
    plan.errors.push(`${crtPath} is not signed by the present ${leaf.ca} CA (${certPath(ctx, caSpec(leaf.ca).baseName, "crt")}); nothing is replaced`);
    return;
  }
  const want = { commonName: leaf.commonName(ctx), organizations: leaf.organizations, altNames: leaf.altNames?.(ctx), extKeyUsages: leaf.extKeyUsages };
  const diffs = subjectDifferences(info, want);
  let mustReissue: string | undefined;
  if (!key) mustReissue = `${keyPath} is missing`;
  else {
    try {
      if (!keyMatches(info, parsePrivateKey(key))) mustReissue = "its key does not match the certificate";
    } catch (e) {
      mustReissue = `${keyPath} ${(e as Error).message}`;
    }
  }
  if (!mustReissue && diffs.length) mustReissue = diffs.join("; ");
  void unreadable;
  decideSigned(plan, d, ca, { mustReissue, expiresAt: info.notAfter }, renewWindowEnd, renew);
}

function planServiceAccount(plan: PkiPlan, get: Getter, shared?: SharedCaSet): void {
  const ctx = plan.ctx;
  const keyPath = certPath(ctx, "sa", "key");
  const pubPath = certPath(ctx, "sa", "pub");
  const before = plan.errors.length;
  const key = get(keyPath);
  const pub = get(pubPath);
  if (plan.errors.length > before) return;
  const d = { name: SERVICE_ACCOUNT_KEY.name, kind: "keypair" as const, paths: [keyPath, pubPath] };
  const sharedKey = shared?.get("sa.key");
  const sharedPub = shared?.get("sa.pub");
  if (!key) {
    if (pub) {
      plan.errors.push(`${pubPath} exists but ${keyPath} does not; remove sa.pub or supply sa.key`);
      return;
    }
    if (sharedKey && sharedPub) {
      plan.copies.set(keyPath, sharedKey);
      plan.copies.set(pubPath, sharedPub);
      plan.decisions.push({ ...d, action: "copy", reason: "from the first control plane" });
      return;
    }
    plan.decisions.push({ ...d, action: "create", reason: "no service account key yet" });
    return;
  }
  let k;
  try {
    k = parsePrivateKey(key);
  } catch (e) {
    plan.errors.push(`${keyPath} ${(e as Error).message}`);
    return;
  }
  if (sharedKey && !sharedKey.equals(key)) {
    plan.errors.push(`${keyPath} differs from the first control plane's sa.key; service account tokens would not verify across control planes`);
    return;
  }
  if (!pub) {
    plan.saKeyPem = key;
    plan.decisions.push({ ...d, action: "reissue", reason: "sa.pub missing: derived from sa.key" });
    return;
  }
  if (!publicKeyMatches(pub, k)) {
    plan.errors.push(`${pubPath} does not match ${keyPath}; nothing is replaced (a new key would invalidate every service account token)`);
    return;
  }
  plan.decisions.push({ ...d, action: "keep", reason: "present" });
}

function planKubeconfig(plan: PkiPlan, kc: KubeconfigSpec, get: Getter, renewWindowEnd: Date, renew: boolean): void {
  const ctx = plan.ctx;
  const path = kubeconfigPath(ctx, kc.name);
  const ca = plan.cas.get(kc.ca)!;
  const before = plan.errors.length;
  const text = get(path);
  if (plan.errors.length > before || ca.broken) return;
  const d = { name: kc.name, kind: "kubeconfig" as const, paths: [path], ca: kc.ca };
  if (!text) return decideSigned(plan, d, ca, { missing: "no kubeconfig yet" }, renewWindowEnd, renew);
  let parsed;
  let info: CertInfo;
  try {
    parsed = parseKubeconfig(text);
    info = parseCert(parsed.clientCertPem);
  } catch (e) {
    plan.errors.push(`${path} ${(e as Error).message}; fix or remove it`);
    return;
  }
  if (!ca.cert) {
    plan.errors.push(`${path} exists but the ${kc.ca} CA does not; remove it or provide the CA`);
    return;
  }
  if (!sameCert(Buffer.from(parsed.caCertPem), ca.cert)) {
    plan.errors.push(`${path} names a different CA than ${certPath(ctx, caSpec(kc.ca).baseName, "crt")}; nothing is replaced`);
    return;
  }
  if (!signedBy(info, ca.cert)) {
    plan.errors.push(`${path}: its client certificate is not signed by the present ${kc.ca} CA; nothing is replaced`);
    return;
  }
  const diffs = subjectDifferences(info, { commonName: kc.commonName(ctx), organizations: kc.organizations, extKeyUsages: ["clientAuth"] });
  const server = kc.server(ctx);
  let mustReissue: string | undefined;
  if (parsed.server !== server) mustReissue = `server ${parsed.server} -> ${server}`;
  else if (diffs.length) mustReissue = diffs.join("; ");
  else if (parsed.clusterName !== ctx.clusterName) mustReissue = `cluster name ${parsed.clusterName} -> ${ctx.clusterName}`;
  else {
    try {
      if (!keyMatches(info, parsePrivateKey(parsed.clientKeyPem))) mustReissue = "its key does not match its certificate";
    } catch {
      mustReissue = "its client key is not a PEM private key";
    }
  }
  decideSigned(plan, d, ca, { mustReissue, expiresAt: info.notAfter }, renewWindowEnd, renew);
}

/** Plan-level summary line per decision, for output. */
export function describeDecision(d: Decision): string {
  const verb = { keep: "kept", create: "created", reissue: "re-issued", copy: "copied" }[d.action];
  return `${verb.padEnd(10)} ${d.name.padEnd(24)} ${d.reason}`;
}

export function changes(plan: PkiPlan): Decision[] {
  return plan.decisions.filter((d) => d.action !== "keep");
}
