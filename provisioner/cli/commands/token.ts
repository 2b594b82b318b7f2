// kubeprov token create|list|delete|generate: bootstrap tokens of a running cluster, through the
// API of its first control plane (admin.conf read over SSH). Arguments are checked before any
// host is contacted (exit 2). A token is printed on stdout when the user asks for one; it never
// goes to logs or command lines.
import type { Command } from "commander";
import { UsageError, HostError } from "../../errors.js";
import { MemoryReporter } from "../../events.js";
import { createRunContext } from "../../engine/context.js";
import type { RunContext } from "../../engine/task.js";
import { openTransport } from "../../transport/pool.js";
import { closeHosts, toHost } from "../../engine/hosts.js";
import { loadTarget } from "../target.js";
import { outputOption, targetOptions, type CommonOptions } from "../options.js";
import { apiClient, closeApiClients, objectPath, type KubeObject } from "../../bootstrap/api.js";
import {
  BOOTSTRAP_TOKEN_SECRET_PREFIX,
  DEFAULT_TOKEN_TTL_MS,
  formatToken,
  formatTtl,
  generateToken,
  parseDuration,
  parseToken,
  requireToken,
  rfc3339,
  tokenSecret,
  TOKEN_ID_PATTERN,
  type TokenInfo,
} from "../../bootstrap/token.js";
import { desiredClusterInfo, listTokens, syncClusterInfo } from "../../tasks/bootstrap.js";
import { PKI_DIR } from "../../constants.js";
import { caCertHash } from "../../pki/hash.js";
import { joinEndpoint, kubeadmJoinLine, targetOf } from "../../bootstrap/joincmd.js";
import { firstControlPlane } from "../../bootstrap/api.js";

interface CreateOptions extends CommonOptions {
  ttl?: string;
  description?: string;
  printJoinCommand?: boolean;
}

/** Connects to the first control plane only, runs fn with a context for it, closes everything. */
async function withFirstControlPlane<T>(opts: CommonOptions, fn: (ctx: RunContext) => Promise<T>): Promise<T> {
  const { cluster, source } = await loadTarget(opts);
  const spec = cluster.spec.hosts.find((h) => h.roles.includes("control-plane"));
  if (!spec) throw new UsageError(`${source}: the cluster has no control-plane host`);
  const host = toHost(spec, await openTransport(cluster, spec));
  const ctx = createRunContext({ cluster, source, hosts: [host], reporter: new MemoryReporter() });
  try {
    return await fn(ctx);
  } finally {
    await closeApiClients(ctx);
    await closeHosts([host]);
  }
}

/** Re-signs cluster-info after tokens changed. */
async function refreshClusterInfo(ctx: RunContext): Promise<void> {
  const cp = firstControlPlane(ctx);
  const ca = await cp.transport.readFile(`${PKI_DIR}/ca.crt`);
  if (!ca) throw new HostError(cp.name, "token", `${PKI_DIR}/ca.crt not found`);
  const api = await apiClient(ctx);
  await syncClusterInfo(api, await desiredClusterInfo(api, ctx.cluster, ca.toString("utf8"), cp.nodeIP));
}

function tokenJson(t: TokenInfo, now: Date) {
  return {
    token: formatToken(t),
    id: t.id,
    ttl: formatTtl(t, now),
    expires: t.expires ? rfc3339(t.expires) : null,
    usages: t.usages,
    groups: t.groups,
    description: t.description ?? "",
  };
}

export function register(program: Command): void {
  const token = program.command("token").description("manage bootstrap tokens (join credentials) of a running cluster");

  targetOptions(
    token
      .command("create [token]")
      .description("create a bootstrap token (random unless TOKEN is given: [a-z0-9]{6}.[a-z0-9]{16}) and print it")
      .option("--ttl <duration>", "how long the token is valid (e.g. 24h, 90m); 0 never expires", "24h")
      .option("--description <text>", "a human-readable note stored with the token")
      .option("--print-join-command", "print the join commands (kubeprov and kubeadm) instead of the bare token"),
  ).action(async (given: string | undefined, opts: CreateOptions) => {
    // Everything the user typed is checked before any host is contacted.
    const t = given !== undefined ? requireToken(given, "TOKEN") : generateToken();
    const ttlMs = opts.ttl === undefined ? DEFAULT_TOKEN_TTL_MS : parseDuration(opts.ttl, "--ttl");
    await withFirstControlPlane(opts, async (ctx) => {
      const api = await apiClient(ctx);
      const created = await api.create(tokenSecret(t, { ttlMs, description: opts.description ?? "" }) as KubeObject);
      if (!created) throw new HostError(firstControlPlane(ctx).name, "token", `a bootstrap token with id ${t.id} already exists`);
      await refreshClusterInfo(ctx);
      const full = formatToken(t);
      if (!opts.printJoinCommand) {
        process.stdout.write(full + "\n");
        return;
      }
      const cp = firstControlPlane(ctx);
      const ca = await cp.transport.readFile(`${PKI_DIR}/ca.crt`);
      const input = {
        endpoint: joinEndpoint(ctx.cluster, cp.nodeIP),
        token: full,
        caHash: caCertHash(ca!),
        target: targetOf(ctx.source, ctx.cluster.metadata.name),
      };
      process.stdout.write(`kubeprov join ${input.target}\n${kubeadmJoinLine(input)}\n`);
    });
  });

  outputOption(targetOptions(token.command("list").description("list the bootstrap tokens (with their TTL, usages and groups)"))).action(
    async (opts: CommonOptions) => {
      await withFirstControlPlane(opts, async (ctx) => {
        const now = new Date();
        const tokens = (await listTokens(await apiClient(ctx))).sort((a, b) => a.id.localeCompare(b.id));
        if (opts.output === "json") {
          process.stdout.write(JSON.stringify(tokens.map((t) => tokenJson(t, now)), null, 2) + "\n");
          return;
        }
        const rows = [["TOKEN", "TTL", "EXPIRES", "USAGES", "DESCRIPTION", "EXTRA GROUPS"]];
        for (const t of tokens) {
          rows.push([formatToken(t), formatTtl(t, now), t.expires ? rfc3339(t.expires) : "<never>", t.usages.join(","), t.description ?? "<none>", t.groups.join(",")]);
        }
        const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
        for (const r of rows) process.stdout.write(r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join("   ") + "\n");
      });
    },
  );

  targetOptions(
    token
      .command("delete <tokens...>")
      .description("delete bootstrap tokens, by id (abcdef) or whole token; their cluster-info signatures go too"),
  ).action(async (ids: string[], opts: CommonOptions) => {
    const wanted = ids.map((v) => {
      if (TOKEN_ID_PATTERN.test(v)) return v;
      const t = parseToken(v);
      if (!t) throw new UsageError("token delete: give a token id ([a-z0-9]{6}) or a whole token ([a-z0-9]{6}.[a-z0-9]{16})");
      return t.id;
    });
    await withFirstControlPlane(opts, async (ctx) => {
      const api = await apiClient(ctx);
      const missing: string[] = [];
      for (const id of wanted) {
        const gone = await api.delete(objectPath("v1", "Secret", `${BOOTSTRAP_TOKEN_SECRET_PREFIX}${id}`, "kube-system"));
        if (gone) process.stdout.write(`bootstrap token "${id}" deleted\n`);
        else missing.push(id);
      }
      await refreshClusterInfo(ctx);
      if (missing.length) throw new HostError(firstControlPlane(ctx).name, "token", `no bootstrap token with id ${missing.join(", ")}`);
    });
  });

  token
    .command("generate")
    .description("print a random token in the bootstrap token format (contacts no host)")
    .action(() => {
      process.stdout.write(formatToken(generateToken()) + "\n");
    });
}
