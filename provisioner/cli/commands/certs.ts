// kubeprov certs generate | check-expiration | renew | ca-hash
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import type { Command } from "commander";
import { KUBERNETES_DIR, PKI_DIR } from "../../constants.js";
import { UsageError } from "../../errors.js";
import { pkiContext, renewableNames } from "../../pki/certlist.js";
import { ensurePki } from "../../pki/ensure.js";
import { expirationReport, formatExpiration } from "../../pki/expiration.js";
import { caCertHash } from "../../pki/hash.js";
import { describeDecision } from "../../pki/plan.js";
import { renewFromExisting } from "../../pki/renew.js";
import { FsStore, type PkiStore } from "../../pki/store.js";
import { TransportStore } from "../../tasks/certs-store.js";
import { openTransport } from "../../transport/pool.js";
import type { Cluster } from "../../spec/schema.js";
import { loadTarget } from "../target.js";
import { outputOption, targetOptions, type OutputFormat } from "../options.js";

interface GenerateOpts {
  certDir?: string;
  kubeconfigDir?: string;
  node?: string;
  file?: string;
  name?: string;
  dryRun?: boolean;
  output: OutputFormat;
}

export function register(program: Command): void {
  const certs = program.command("certs").description("certificates: generate, check expiration, renew, CA hash");

  const gen = certs
    .command("generate")
    .description("generate the PKI of one node into local directories (offline: no host is touched)")
    .option("--cert-dir <dir>", "where the certificates and keys go (kubeadm's pki layout)")
    .option("--kubeconfig-dir <dir>", "also write the kubeconfigs (admin.conf, …) here")
    .option("--node <name>", "the node to generate for (default: the first control plane)")
    .option("--dry-run", "print what would be created, re-issued or kept; write nothing", false);
  targetOptions(gen);
  outputOption(gen);
  gen.action(async (o: GenerateOpts) => {
    if (!o.certDir) throw new UsageError("certs generate needs --cert-dir DIR");
    const { cluster, source } = await loadTarget(o);
    const certDir = resolve(o.certDir);
    const kubeconfigDir = o.kubeconfigDir ? resolve(o.kubeconfigDir) : undefined;
    const ctx = pkiContext(cluster, o.node, { certDir, kubeconfigDir: kubeconfigDir ?? certDir, source });
    const started = performance.now();
    const r = await ensurePki(new FsStore(), ctx, { kubeconfigs: kubeconfigDir !== undefined, dryRun: o.dryRun });
    const ms = Math.round(performance.now() - started);
    const count = (a: string) => r.plan.decisions.filter((d) => d.action === a).length;
    if (o.output === "json") {
      process.stdout.write(
        JSON.stringify({ node: ctx.node.name, certDir, kubeconfigDir, dryRun: !!o.dryRun, durationMs: ms, decisions: r.plan.decisions, warnings: r.plan.warnings }, null, 2) + "\n",
      );
      return;
    }
    for (const d of r.plan.decisions) process.stdout.write(`${o.dryRun && d.action !== "keep" ? "(dry run) " : ""}${describeDecision(d)}\n`);
    for (const f of r.plan.modeFixes) process.stdout.write(`${o.dryRun ? "(dry run) " : ""}${"chmod".padEnd(10)} ${f.path} ${f.from.toString(8)} -> ${f.to.toString(8)}\n`);
    for (const w of r.plan.warnings) process.stderr.write(`warning: ${w}\n`);
    process.stdout.write(
      `node ${ctx.node.name}: ${count("create")} created, ${count("reissue")} re-issued, ${count("keep")} kept${o.dryRun ? " (dry run: nothing written)" : ""} in ${ms} ms\n`,
    );
  });

  const exp = certs
    .command("check-expiration")
    .description("when each certificate and CA expires (local directories, or the first control plane with -f/--name)")
    .option("--cert-dir <dir>", `certificate directory (default ${PKI_DIR})`)
    .option("--kubeconfig-dir <dir>", `kubeconfig directory (default ${KUBERNETES_DIR})`);
  targetOptions(exp);
  outputOption(exp);
  exp.action(async (o: GenerateOpts) => {
    const report = await withStore(o, (store, dirs) => expirationReport(store, dirs));
    if (o.output === "json") process.stdout.write(JSON.stringify(report, null, 2) + "\n");
    else process.stdout.write(formatExpiration(report));
  });

  const renew = certs
    .command("renew")
    .argument("<names...>", `all, or some of: ${renewableNames().join(", ")}`)
    .description("re-issue certificates from the same CA (new key, fresh validity; subject and SANs kept)")
    .option("--cert-dir <dir>", `certificate directory (default ${PKI_DIR})`)
    .option("--kubeconfig-dir <dir>", `kubeconfig directory (default ${KUBERNETES_DIR})`);
  targetOptions(renew);
  outputOption(renew);
  renew.action(async (names: string[], o: GenerateOpts) => {
    const list = names.includes("all") ? "all" : names;
    if (list === "all" && names.length > 1) throw new UsageError("give either all or certificate names, not both");
    const results = await withStores(o, async (store, dirs, cluster) =>
      renewFromExisting(store, {
        ...dirs,
        names: list,
        validityDays: cluster?.spec.pki.certificateValidityDays ?? 365,
        keySize: cluster?.spec.pki.keySize ?? 2048,
      }),
    );
    if (o.output === "json") {
      process.stdout.write(JSON.stringify(results.map(({ where, value }) => ({ host: where, ...value })), null, 2) + "\n");
      return;
    }
    for (const { where, value } of results) {
      for (const r of value.renewed) process.stdout.write(`${where}: renewed ${r.name} (valid until ${r.notAfter.toISOString()})\n`);
      for (const m of value.missing) process.stdout.write(`${where}: skipped ${m} (not present)\n`);
    }
    if (results.some((r) => r.where !== "local")) {
      process.stdout.write(
        "Restart kube-apiserver, kube-controller-manager, kube-scheduler and etcd on each control plane so they load the renewed certificates (kubeprov does not restart them yet).\n",
      );
    }
  });

  const hash = certs
    .command("ca-hash")
    .description("the CA's public key pin, sha256:<hex> (kubeadm's --discovery-token-ca-cert-hash)")
    .option("--cert-dir <dir>", `certificate directory (default ${PKI_DIR})`)
    .option("--ca-cert <file>", "a CA certificate file (instead of <cert-dir>/ca.crt)");
  targetOptions(hash);
  hash.action(async (o: GenerateOpts & { caCert?: string }) => {
    let pem: Buffer | undefined;
    if (o.caCert || !(o.file || o.name)) {
      const file = o.caCert ?? `${resolve(o.certDir ?? PKI_DIR)}/ca.crt`;
      pem = await readFile(file).catch((e: NodeJS.ErrnoException) => {
        throw new UsageError(`cannot read ${file}: ${e.code === "ENOENT" ? "no such file" : e.message}`);
      });
    } else {
      pem = await withStore(o, (store, dirs) => store.read(`${dirs.certDir}/ca.crt`));
      if (!pem) throw new UsageError("the first control plane has no ca.crt yet");
    }
    try {
      process.stdout.write(`${caCertHash(pem)}\n`);
    } catch {
      throw new UsageError("the CA file is not a PEM certificate");
    }
  });
}

type Dirs = { certDir: string; kubeconfigDir: string };

/** Local directories (--cert-dir/--kubeconfig-dir or kubeadm's defaults), or the first control plane of -f/--name. */
async function withStore<T>(o: GenerateOpts, fn: (store: PkiStore, dirs: Dirs, cluster?: Cluster) => Promise<T>): Promise<T> {
  const results = await withStores(o, fn, true);
  return results[0]!.value;
}

async function withStores<T>(
  o: GenerateOpts,
  fn: (store: PkiStore, dirs: Dirs, cluster?: Cluster) => Promise<T>,
  firstOnly = false,
): Promise<{ where: string; value: T }[]> {
  const onCluster = (o.file || o.name) && !o.certDir && !o.kubeconfigDir;
  if (!onCluster) {
    const cluster = o.file || o.name ? (await loadTarget(o)).cluster : undefined;
    const dirs = { certDir: resolve(o.certDir ?? PKI_DIR), kubeconfigDir: resolve(o.kubeconfigDir ?? KUBERNETES_DIR) };
    return [{ where: "local", value: await fn(new FsStore(), dirs, cluster) }];
  }
  const { cluster } = await loadTarget(o);
  const cps = cluster.spec.hosts.filter((h) => h.roles.includes("control-plane"));
  const out: { where: string; value: T }[] = [];
  for (const h of firstOnly ? cps.slice(0, 1) : cps) {
    const t = await openTransport(cluster, h);
    try {
      out.push({ where: h.name, value: await fn(new TransportStore(t), { certDir: PKI_DIR, kubeconfigDir: KUBERNETES_DIR }, cluster) });
    } finally {
      await t.close();
    }
  }
  return out;
}
