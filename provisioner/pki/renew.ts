// `certs renew` without a cluster file: re-issue existing leaves and kubeconfig client certificates
// from the same CA, keeping each certificate's subject, SANs and extended key usages (what kubeadm's
// renewal does), with a new key and a fresh validity. Everything is checked before anything is written.
import { CAS, KUBECONFIGS, LEAVES, caSpec, certPath, kubeconfigPath, type CAName, type ExtKeyUsage } from "./certlist.js";
import { PkiStateError } from "./ensure.js";
import { ekuOids, parseCert, signedBy, type CertInfo } from "./inspect.js";
import { forgeCertFromPem, issueCertificate, type Issuer } from "./issue.js";
import { newRsaKey, parsePrivateKey, rsaKeyFrom } from "./keys.js";
import { buildKubeconfig, parseKubeconfig } from "./kubeconfig.js";
import { MODE_CERT, MODE_KEY, MODE_KUBECONFIG, type FileWrite } from "./materialize.js";
import { keyMatches } from "./inspect.js";
import { readSnapshot, writeAll, type PkiStore } from "./store.js";
import { UsageError } from "../errors.js";

export interface RenewOptions {
  certDir: string;
  kubeconfigDir: string;
  /** "all" or leaf / kubeconfig names from the table. */
  names: string[] | "all";
  validityDays: number;
  keySize: number;
  now?: Date;
}

export interface RenewResult {
  renewed: { name: string; paths: string[]; notAfter: Date }[];
  /** Names asked for with "all" whose files do not exist (skipped). */
  missing: string[];
}

const EKU_BY_OID = new Map(["serverAuth", "clientAuth"].map((u) => [ekuOids([u as ExtKeyUsage])[0]!, u as ExtKeyUsage]));

export async function renewFromExisting(store: PkiStore, o: RenewOptions): Promise<RenewResult> {
  const now = o.now ?? new Date();
  const known = [...LEAVES.map((l) => l.name), ...KUBECONFIGS.map((k) => k.name)];
  if (o.names !== "all") {
    const bad = o.names.filter((n) => !known.includes(n));
    if (bad.length) throw new UsageError(`unknown certificate ${bad.map((b) => JSON.stringify(b)).join(", ")}; one of: all, ${known.join(", ")}`);
  }
  const wanted = (n: string) => o.names === "all" || o.names.includes(n);
  const c = { certDir: o.certDir, kubeconfigDir: o.kubeconfigDir };
  const paths = [
    ...CAS.flatMap((ca) => [certPath(c, ca.baseName, "crt"), certPath(c, ca.baseName, "key")]),
    ...LEAVES.filter((l) => wanted(l.name)).map((l) => certPath(c, l.baseName, "crt")),
    ...KUBECONFIGS.filter((k) => wanted(k.name)).map((k) => kubeconfigPath(c, k.name)),
  ];
  const snap = await readSnapshot(store, paths);
  const errors: string[] = [];
  const get = (p: string) => {
    const v = snap.get(p);
    if (v instanceof Error) {
      errors.push(`cannot read ${p}: ${v.message}`);
      return undefined;
    }
    return v;
  };
  const issuers = new Map<CAName, { info: CertInfo; issuer?: Issuer; error?: string }>();
  const issuerFor = (name: CAName): { info: CertInfo; issuer: Issuer } | string => {
    if (!issuers.has(name)) {
      const spec = caSpec(name);
      const crtPath = certPath(c, spec.baseName, "crt");
      const keyPath = certPath(c, spec.baseName, "key");
      const crt = get(crtPath);
      const key = get(keyPath);
      if (!crt) return `${crtPath} does not exist`;
      let info: CertInfo;
      try {
        info = parseCert(crt);
      } catch (e) {
        return `${crtPath} ${(e as Error).message}`;
      }
      if (!key) {
        issuers.set(name, { info, error: `the ${name} CA is external (no ${keyPath}): renew with that CA` });
      } else {
        try {
          if (!keyMatches(info, parsePrivateKey(key))) issuers.set(name, { info, error: `${keyPath} does not match ${crtPath}` });
          else issuers.set(name, { info, issuer: { cert: forgeCertFromPem(crt), key: rsaKeyFrom(key) } });
        } catch (e) {
          issuers.set(name, { info, error: `${keyPath} ${(e as Error).message}` });
        }
      }
    }
    const e = issuers.get(name)!;
    return e.error ?? { info: e.info, issuer: e.issuer! };
  };

  type Job = { name: string; ca: CAName; template: CertInfo; paths: string[]; finish: (certPem: string, keyPem: string) => FileWrite[] };
  const jobs: Job[] = [];
  const missing: string[] = [];
  for (const leaf of LEAVES.filter((l) => wanted(l.name))) {
    const crtPath = certPath(c, leaf.baseName, "crt");
    const keyPath = certPath(c, leaf.baseName, "key");
    const crt = get(crtPath);
    if (!crt) {
      if (o.names === "all") missing.push(leaf.name);
      else errors.push(`${crtPath} does not exist; nothing to renew (use certs generate)`);
      continue;
    }
    let info: CertInfo;
    try {
      info = parseCert(crt);
    } catch (e) {
      errors.push(`${crtPath} ${(e as Error).message}`);
      continue;
    }
    jobs.push({
      name: leaf.name,
      ca: leaf.ca,
      template: info,
      paths: [crtPath, keyPath],
      finish: (certPem, keyPem) => [
        { path: keyPath, data: Buffer.from(keyPem), mode: MODE_KEY },
        { path: crtPath, data: Buffer.from(certPem), mode: MODE_CERT },
      ],
    });
  }
  for (const kc of KUBECONFIGS.filter((k) => wanted(k.name))) {
    const path = kubeconfigPath(c, kc.name);
    const text = get(path);
    if (!text) {
      if (o.names === "all") missing.push(kc.name);
      else errors.push(`${path} does not exist; nothing to renew`);
      continue;
    }
    let parsed: ReturnType<typeof parseKubeconfig>;
    let info: CertInfo;
    try {
      parsed = parseKubeconfig(text);
      info = parseCert(parsed.clientCertPem);
    } catch (e) {
      errors.push(`${path} ${(e as Error).message}`);
      continue;
    }
    jobs.push({
      name: kc.name,
      ca: kc.ca,
      template: info,
      paths: [path],
      finish: (certPem, keyPem) => [
        {
          path,
          data: Buffer.from(buildKubeconfig({ clusterName: parsed.clusterName, server: parsed.server, caCertPem: parsed.caCertPem, userName: parsed.userName, clientCertPem: certPem, clientKeyPem: keyPem })),
          mode: MODE_KUBECONFIG,
        },
      ],
    });
  }
  for (const j of jobs) {
    const iss = issuerFor(j.ca);
    if (typeof iss === "string") errors.push(`${j.name}: ${iss}`);
    else if (!signedBy(j.template, iss.info)) errors.push(`${j.paths[0]} is not signed by the present ${j.ca} CA; nothing is replaced`);
  }
  if (errors.length) throw new PkiStateError(store.where, [...new Set(errors)]);

  const writes: FileWrite[] = [];
  const renewed: RenewResult["renewed"] = [];
  await Promise.all(
    jobs.map(async (j) => {
      const iss = issuerFor(j.ca) as { info: CertInfo; issuer: Issuer };
      const key = await newRsaKey(o.keySize);
      const { pem, cert } = issueCertificate(
        {
          commonName: j.template.commonName,
          organizations: j.template.organizations,
          altNames: j.template.altNames,
          extKeyUsages: j.template.extKeyUsages.map((oid) => EKU_BY_OID.get(oid)).filter((u): u is ExtKeyUsage => !!u),
          isCA: false,
          validityDays: o.validityDays,
          key,
          now,
          notAfterLimit: iss.info.notAfter,
        },
        iss.issuer,
      );
      writes.push(...j.finish(pem, key.privatePem));
      renewed.push({ name: j.name, paths: j.paths, notAfter: cert.validity.notAfter });
    }),
  );
  await writeAll(store, writes, () => false);
  renewed.sort((a, b) => a.name.localeCompare(b.name));
  return { renewed, missing };
}
