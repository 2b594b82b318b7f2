// Shared by the PKI tests: temporary directories, cluster objects, openssl, and a fingerprint of a
// directory tree (content + mode of every file) to prove that nothing was written.
import { execFileSync, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { clusterSchema, type Cluster, type ClusterInput } from "../../provisioner/spec/schema.js";

export const REPO = join(import.meta.dirname, "..", "..", "..");
export const CLI = join(REPO, "bin", "kubeprov.js");

/** Directories made by tmp(), removed when the test file's process exits (they hold test keys). */
const made: string[] = [];
process.on("exit", () => {
  for (const d of made) rmSync(d, { recursive: true, force: true });
});

export function tmp(prefix: string): string {
  const d = mkdtempSync(join(tmpdir(), `kpt-pki-${prefix}-`));
  made.push(d);
  return d;
}

export function cluster(spec: Partial<ClusterInput["spec"]> = {}, name = "demo"): Cluster {
  return clusterSchema.parse({
    apiVersion: "kubeprov/v1alpha1",
    kind: "Cluster",
    metadata: { name },
    spec: {
      hosts: [
        { name: "cp1", address: "10.213.0.10", roles: ["control-plane"] },
        { name: "cp2", address: "10.213.0.11", roles: ["control-plane"] },
        { name: "w1", address: "10.213.0.20", roles: ["worker"] },
      ],
      ...spec,
    },
  });
}

export function openssl(args: string[], input?: string | Buffer): string {
  return execFileSync("openssl", args, { input, encoding: "utf8", stdio: ["pipe", "pipe", "pipe"] });
}

export function opensslBuf(args: string[], input?: string | Buffer): Buffer {
  return execFileSync("openssl", args, { input, stdio: ["pipe", "pipe", "pipe"] });
}

/** `openssl x509 -noout -text` of a file. */
export function certText(path: string): string {
  return openssl(["x509", "-in", path, "-noout", "-text"]);
}

export function subject(path: string): string {
  return openssl(["x509", "-in", path, "-noout", "-subject", "-nameopt", "RFC2253"]).trim().replace(/^subject=/, "");
}

/** DER SubjectPublicKeyInfo of a certificate and of a private key, compared by the caller. */
export function certPubDer(certPem: string | Buffer): Buffer {
  const pub = openssl(["x509", "-pubkey", "-noout"], certPem);
  return opensslBuf(["pkey", "-pubin", "-outform", "der"], pub);
}
export function keyPubDer(keyPem: string | Buffer): Buffer {
  return opensslBuf(["pkey", "-pubout", "-outform", "der"], keyPem);
}

export function verify(caFile: string, certFile: string): { ok: boolean; out: string } {
  const r = spawnSync("openssl", ["verify", "-CAfile", caFile, certFile], { encoding: "utf8" });
  return { ok: r.status === 0 && r.stdout.includes(": OK"), out: r.stdout + r.stderr };
}

/** path -> "mode sha256" for every file below dir (stable, sorted). */
export function fingerprint(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out[relative(dir, p)] = `${(statSync(p).mode & 0o777).toString(8)} ${createHash("sha256").update(readFileSync(p)).digest("hex")}`;
    }
  };
  walk(dir);
  return out;
}

export function runCli(args: string[], opts: { umask?: string; input?: string } = {}): { code: number; stdout: string; stderr: string } {
  const cmd = opts.umask ? ["-c", `umask ${opts.umask} && exec "$0" "$@"`, process.execPath, CLI, ...args] : undefined;
  const r = cmd
    ? spawnSync("/bin/sh", cmd, { encoding: "utf8", input: opts.input })
    : spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", input: opts.input });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

export const CLUSTER_YAML = `apiVersion: kubeprov/v1alpha1
kind: Cluster
metadata:
  name: demo
spec:
  controlPlaneEndpoint: api.example.test:6443
  controlPlane:
    certSANs: [10.0.0.99, lb.example.test]
  hosts:
    - name: cp1
      address: 10.213.0.10
      roles: [control-plane]
    - name: cp2
      address: 10.213.0.11
      roles: [control-plane]
`;
