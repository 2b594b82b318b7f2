// Turning a plan into file contents: generate the keys that are needed (all at once, on the native
// thread pool), sign with the CAs, build kubeconfigs. Nothing is written here.
import type forge from "node-forge";
import { CAS, KUBECONFIGS, LEAVES, certPath, kubeconfigPath, type CAName } from "./certlist.js";
import { forgeCertFromPem, issueCertificate, toPem, type Issuer } from "./issue.js";
import { newRsaKey, rsaKeyFrom, type RsaKey } from "./keys.js";
import { buildKubeconfig } from "./kubeconfig.js";
import type { Decision, PkiPlan } from "./plan.js";

export const MODE_KEY = 0o600;
export const MODE_CERT = 0o644;
export const MODE_KUBECONFIG = 0o600;

export interface FileWrite {
  path: string;
  data: Buffer;
  mode: number;
}

/** A decision that needs a new key: a created entry, or a re-issued certificate (a re-issued sa keypair keeps its key). */
export function needsNewKey(d: Decision): boolean {
  return d.action === "create" || (d.action === "reissue" && d.kind !== "keypair");
}

/** The files to write for a plan without errors, in a safe order (CAs first, a key before its certificate). */
export async function materialize(plan: PkiPlan): Promise<FileWrite[]> {
  if (plan.errors.length) throw new Error("materialize called on a plan with errors");
  const ctx = plan.ctx;
  const writes: FileWrite[] = [];
  const put = (path: string, data: string | Buffer, mode: number) => writes.push({ path, data: Buffer.isBuffer(data) ? data : Buffer.from(data), mode });

  for (const [path, data] of plan.copies) put(path, data, path.endsWith(".crt") ? MODE_CERT : MODE_KEY);

  // Start every key generation now; they run in parallel on the thread pool.
  const keys = new Map<string, Promise<RsaKey>>();
  for (const d of plan.decisions) {
    if (needsNewKey(d)) keys.set(d.name, newRsaKey(ctx.keySize));
  }
  const changed = new Map(plan.decisions.filter((d) => d.action !== "keep" && d.action !== "copy").map((d) => [d.name, d]));

  // Issuers: existing CAs from their files, new ones self-signed.
  const issuers = new Map<CAName, Promise<Issuer | undefined>>();
  for (const spec of CAS) {
    // A node that holds part of the table (an etcd host) has plans for some CAs only.
    const state = plan.cas.get(spec.name);
    if (!state) continue;
    issuers.set(
      spec.name,
      (async () => {
        if (changed.get(spec.name)?.action === "create") {
          const key = await keys.get(spec.name)!;
          const { pem, cert } = issueCertificate({ commonName: spec.commonName, organizations: [], extKeyUsages: [], isCA: true, validityDays: ctx.caValidityDays, key, now: plan.now });
          put(certPath(ctx, spec.baseName, "key"), key.privatePem, MODE_KEY);
          put(certPath(ctx, spec.baseName, "crt"), pem, MODE_CERT);
          return { cert, key };
        }
        if (!state.cert || !state.keyPem) return undefined;
        return { cert: forgeCertFromPem(state.cert.pem), key: rsaKeyFrom(state.keyPem) } satisfies Issuer;
      })(),
    );
  }
  await Promise.all([...issuers.values()]);
  const caNotAfter = (i: Issuer) => (i.cert as forge.pki.Certificate).validity.notAfter;

  /** A leaf (or a kubeconfig's client certificate) signed by its CA, never outliving it. */
  const issueLeaf = async (ca: CAName, name: string, subject: Pick<Parameters<typeof issueCertificate>[0], "commonName" | "organizations" | "altNames" | "extKeyUsages">) => {
    const issuer = (await issuers.get(ca))!;
    const key = await keys.get(name)!;
    const { pem } = issueCertificate(
      { ...subject, isCA: false, validityDays: ctx.certificateValidityDays, key, now: plan.now, notAfterLimit: caNotAfter(issuer) },
      issuer,
    );
    return { key, pem, issuer };
  };

  const jobs: Promise<void>[] = [];
  for (const leaf of LEAVES) {
    const d = changed.get(leaf.name);
    if (!d) continue;
    jobs.push(
      (async () => {
        const { key, pem } = await issueLeaf(leaf.ca, leaf.name, {
          commonName: leaf.commonName(ctx),
          organizations: leaf.organizations,
          altNames: leaf.altNames?.(ctx),
          extKeyUsages: leaf.extKeyUsages,
        });
        put(certPath(ctx, leaf.baseName, "key"), key.privatePem, MODE_KEY);
        put(certPath(ctx, leaf.baseName, "crt"), pem, MODE_CERT);
      })(),
    );
  }
  const sa = changed.get("sa");
  if (sa) {
    jobs.push(
      (async () => {
        const keyPath = certPath(ctx, "sa", "key");
        if (sa.action === "create") {
          const key = await keys.get("sa")!;
          put(keyPath, key.privatePem, MODE_KEY);
          put(certPath(ctx, "sa", "pub"), key.publicPem, MODE_KEY);
        } else {
          // sa.pub derived from the existing sa.key: the caller passes it through the plan's snapshot.
          const existing = plan.saKeyPem;
          if (!existing) throw new Error("sa.key content missing from the plan");
          put(certPath(ctx, "sa", "pub"), rsaKeyFrom(existing).publicPem, MODE_KEY);
        }
      })(),
    );
  }
  for (const kc of KUBECONFIGS) {
    const d = changed.get(kc.name);
    if (!d) continue;
    jobs.push(
      (async () => {
        const { key, pem, issuer } = await issueLeaf(kc.ca, kc.name, {
          commonName: kc.commonName(ctx),
          organizations: kc.organizations,
          extKeyUsages: ["clientAuth"],
        });
        const caPem = plan.cas.get(kc.ca)!.cert?.pem ?? toPemOf(issuer);
        const text = buildKubeconfig({ clusterName: ctx.clusterName, server: kc.server(ctx), caCertPem: caPem, userName: kc.commonName(ctx), clientCertPem: pem, clientKeyPem: key.privatePem });
        put(kubeconfigPath(ctx, kc.name), text, MODE_KUBECONFIG);
      })(),
    );
  }
  await Promise.all(jobs);
  return order(writes);
}

function toPemOf(i: Issuer): string {
  return toPem(i.cert);
}

/** CA files first, then other keys before certificates, kubeconfigs last. */
function order(w: FileWrite[]): FileWrite[] {
  const rank = (f: FileWrite) => {
    const isCA = CAS.some((c) => f.path.endsWith(`/${c.baseName}.crt`) || f.path.endsWith(`/${c.baseName}.key`));
    if (isCA) return f.path.endsWith(".key") ? 0 : 1;
    if (f.path.endsWith(".key") || f.path.endsWith(".pub")) return 2;
    if (f.path.endsWith(".crt")) return 3;
    return 4;
  };
  return [...w].sort((a, b) => rank(a) - rank(b) || a.path.localeCompare(b.path));
}
