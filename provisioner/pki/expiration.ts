// `certs check-expiration`: every leaf and kubeconfig of the table and every CA, with its expiry,
// residual time, issuing CA and whether it is externally managed (its CA key is absent), as kubeadm
// prints them. Reads files only.
import { CAS, KUBECONFIGS, LEAVES, caSpec, certPath, kubeconfigPath, type CAName } from "./certlist.js";
import { parseCert } from "./inspect.js";
import { parseKubeconfig } from "./kubeconfig.js";
import { readSnapshot, type PkiStore } from "./store.js";

export interface ExpirationRow {
  name: string;
  path: string;
  /** ISO time, absent when the file is missing or unreadable. */
  expires?: string;
  residualTime?: string;
  residualSeconds?: number;
  certificateAuthority?: CAName;
  externallyManaged: boolean;
  missing?: boolean;
  error?: string;
}

export interface ExpirationReport {
  certificates: ExpirationRow[];
  certificateAuthorities: ExpirationRow[];
}

export async function expirationReport(store: PkiStore, dirs: { certDir: string; kubeconfigDir: string }, now = new Date()): Promise<ExpirationReport> {
  const caPaths = CAS.flatMap((c) => [certPath(dirs, c.baseName, "crt"), certPath(dirs, c.baseName, "key")]);
  const leafPaths = LEAVES.map((l) => certPath(dirs, l.baseName, "crt"));
  const kcPaths = KUBECONFIGS.map((k) => kubeconfigPath(dirs, k.name));
  const snap = await readSnapshot(store, [...caPaths, ...leafPaths, ...kcPaths]);
  const external = (ca: CAName) => {
    const s = caSpec(ca);
    return snap.get(certPath(dirs, s.baseName, "crt")) instanceof Buffer && snap.get(certPath(dirs, s.baseName, "key")) === undefined;
  };
  const row = (name: string, path: string, pem: () => string | Buffer | undefined, ca?: CAName): ExpirationRow => {
    const base: ExpirationRow = { name, path, certificateAuthority: ca, externallyManaged: ca ? external(ca) : false };
    const raw = snap.get(path);
    if (raw instanceof Error) return { ...base, error: raw.message };
    if (raw === undefined) return { ...base, missing: true };
    try {
      const info = parseCert(pem()!);
      const secs = Math.floor((info.notAfter.getTime() - now.getTime()) / 1000);
      return { ...base, expires: info.notAfter.toISOString(), residualSeconds: secs, residualTime: shortDuration(secs) };
    } catch (e) {
      return { ...base, error: (e as Error).message };
    }
  };
  const certificates = [
    ...LEAVES.map((l) => row(l.name, certPath(dirs, l.baseName, "crt"), () => snap.get(certPath(dirs, l.baseName, "crt")) as Buffer, l.ca)),
    ...KUBECONFIGS.map((k) => {
      const p = kubeconfigPath(dirs, k.name);
      return row(k.name, p, () => parseKubeconfig(snap.get(p) as Buffer).clientCertPem, k.ca);
    }),
  ]
    // A node has either super-admin.conf or not (first control plane only): list it only when present.
    .filter((r) => !(r.name === "super-admin.conf" && r.missing))
    .sort((a, b) => a.name.localeCompare(b.name));
  const certificateAuthorities = CAS.map((c) => {
    const r = row(c.name, certPath(dirs, c.baseName, "crt"), () => snap.get(certPath(dirs, c.baseName, "crt")) as Buffer);
    return { ...r, externallyManaged: external(c.name) };
  });
  return { certificates, certificateAuthorities };
}

/** kubeadm's short human duration: 45s, 12m, 5h, 364d, 9y; "<invalid>" when expired. */
export function shortDuration(seconds: number): string {
  if (seconds < 0) return "<invalid>";
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 120) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (days < 365 * 8) return `${days}d`;
  return `${Math.floor(days / 365)}y`;
}

function fmtDate(iso?: string): string {
  if (!iso) return "";
  const d = new Date(iso);
  const mon = d.toLocaleString("en-US", { month: "short", timeZone: "UTC" });
  const hh = String(d.getUTCHours()).padStart(2, "0");
  const mm = String(d.getUTCMinutes()).padStart(2, "0");
  return `${mon} ${String(d.getUTCDate()).padStart(2, "0")}, ${d.getUTCFullYear()} ${hh}:${mm} UTC`;
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]! + 3))).join("").trimEnd()).join("\n") + "\n";
}

export function formatExpiration(r: ExpirationReport): string {
  const yn = (b: boolean) => (b ? "yes" : "no");
  const status = (x: ExpirationRow) => (x.missing ? "!MISSING!" : x.error ? `!ERROR! ${x.error}` : "");
  const certs = [
    ["CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY", "EXTERNALLY MANAGED"],
    ...r.certificates.map((x) => (x.expires ? [x.name, fmtDate(x.expires), x.residualTime!, x.certificateAuthority ?? "", yn(x.externallyManaged)] : [x.name, status(x), "", x.certificateAuthority ?? "", ""])),
  ];
  const cas = [
    ["CERTIFICATE AUTHORITY", "EXPIRES", "RESIDUAL TIME", "EXTERNALLY MANAGED"],
    ...r.certificateAuthorities.map((x) => (x.expires ? [x.name, fmtDate(x.expires), x.residualTime!, yn(x.externallyManaged)] : [x.name, status(x), "", ""])),
  ];
  return `${table(certs)}\n${table(cas)}`;
}
