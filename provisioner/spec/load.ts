// Reads a cluster file: YAML (keeping source positions) -> zod schema (strict, defaults) ->
// semantic checks (validate.ts) -> files it names on this machine (vrrp-password.ts). Every problem is reported, each as
// `file:line:col field.path[i]: message`, in one ConfigError (exit 2).
import { readFile } from "node:fs/promises";
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseAllDocuments, type Document, type Node } from "yaml";
import type { z } from "zod";
import { ConfigError } from "../errors.js";
import { clusterSchema, type Cluster } from "./schema.js";
import { validateCluster, type PathSegment, type Problem } from "./validate.js";
import { localFileProblems } from "./vrrp-password.js";

export type { PathSegment, Problem };

/** "spec.hosts[1].roles[0]"; the empty path is "(file)". */
export function formatPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out || "(file)";
}

/** Parses and validates cluster-file text. `source` names the file in messages ("<stdin>" for -f -). */
export function parseClusterText(text: string, source: string): Cluster {
  const lineCounter = new LineCounter();
  // Duplicate keys are found by duplicateKeys() below, which knows the field path and the position.
  // merge: `<<: *defaults` (YAML merge keys) is handy for hosts that share settings.
  const docs = parseAllDocuments(text, { lineCounter, prettyErrors: true, uniqueKeys: false, merge: true });
  const list = Array.isArray(docs) ? docs : [docs];
  const yamlProblems: string[] = [];
  for (const d of list) {
    for (const e of d.errors) {
      const pos = e.linePos?.[0] ?? { line: 1, col: 1 };
      yamlProblems.push(`${source}:${pos.line}:${pos.col} YAML syntax error: ${firstLine(e.message)}`);
    }
  }
  if (yamlProblems.length) throw problemsError(source, yamlProblems);
  const real = list.filter((d) => d.contents !== null);
  if (real.length === 0) throw problemsError(source, [`${source}:1:1 (file): the file is empty; expected a cluster (kubeprov config print-defaults shows one)`]);
  if (real.length > 1) {
    const pos = lineCounter.linePos(real[1].contents!.range![0]);
    throw problemsError(source, [`${source}:${pos.line}:${pos.col} (file): more than one YAML document; a cluster file holds exactly one`]);
  }
  const doc = real[0];
  const dups = duplicateKeys(doc.contents, []).map((d) => {
    const pos = lineCounter.linePos(d.offset);
    const first = lineCounter.linePos(d.firstOffset);
    return `${source}:${pos.line}:${pos.col} ${formatPath(d.path)}: duplicate field "${d.key}" (first given at line ${first.line})`;
  });
  if (dups.length) throw problemsError(source, dups);
  const raw: unknown = doc.toJS({ maxAliasCount: 100 });
  const where = (p: Problem) => {
    const pos = locate(doc, lineCounter, p.path, p.atKey ?? false);
    return `${source}:${pos.line}:${pos.col} ${formatPath(p.path)}: ${p.message}`;
  };

  const parsed = clusterSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap((i) => describeIssue(i, raw));
    throw problemsError(source, dedupe(problems.map(where)));
  }
  const semantic = [...validateCluster(parsed.data), ...localFileProblems(parsed.data, source)];
  if (semantic.length) throw problemsError(source, dedupe(semantic.map(where)));
  return withDerivedDefaults(parsed.data);
}

/** Defaults that depend on other fields: with HA on, the endpoint is the virtual IP and haproxy's port. */
export function withDerivedDefaults(cluster: Cluster): Cluster {
  const { ha } = cluster.spec;
  if (ha.enabled && ha.virtualIP && cluster.spec.controlPlaneEndpoint === undefined) {
    const host = ha.virtualIP.includes(":") ? `[${ha.virtualIP}]` : ha.virtualIP;
    return { ...cluster, spec: { ...cluster.spec, controlPlaneEndpoint: `${host}:${ha.haproxyPort}` } };
  }
  return cluster;
}

/** Reads and parses a cluster file; "-" reads standard input. */
export async function loadClusterFile(path: string): Promise<Cluster> {
  const source = path === "-" ? "<stdin>" : path;
  return parseClusterText(await readClusterText(path), source);
}

/** The raw text of a cluster file ("-" = stdin). A file that cannot be read is a ConfigError. */
export async function readClusterText(path: string): Promise<string> {
  try {
    if (path === "-") return await readStdin();
    return await readFile(path, "utf8");
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const why = err.code === "ENOENT" ? "no such file" : err.code === "EISDIR" ? "is a directory" : err.code === "EACCES" ? "permission denied" : err.message;
    const name = path === "-" ? "<stdin>" : path;
    throw new ConfigError(`cannot read cluster file ${name}: ${why}`);
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(typeof c === "string" ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString("utf8");
}

function problemsError(source: string, problems: string[]): ConfigError {
  const head = problems.length === 1 ? problems[0] : `${source}: ${problems.length} problems`;
  return new ConfigError(head, problems);
}

function dedupe(xs: string[]): string[] {
  return [...new Set(xs)];
}

function firstLine(s: string): string {
  return s.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "").trim();
}

// ---------------------------------------------------------------------------------------------
// zod issues -> readable messages

type Issue = z.core.$ZodIssue;

function valueAt(root: unknown, path: readonly PathSegment[]): { found: boolean; value: unknown } {
  let cur: unknown = root;
  for (const seg of path) {
    if (cur === null || typeof cur !== "object" || !(seg in (cur as object))) return { found: false, value: undefined };
    cur = (cur as Record<string | number, unknown>)[seg];
  }
  return { found: true, value: cur };
}

function show(v: unknown): string {
  if (typeof v === "string") return JSON.stringify(v);
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return String(v);
}

function kindOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "number") return Number.isInteger(v) ? `the number ${v}` : `the number ${v}`;
  if (typeof v === "string") return `the string ${JSON.stringify(v)}`;
  return `${typeof v} ${String(v)}`;
}

const typeWords: Record<string, string> = {
  object: "a mapping",
  array: "a list",
  string: "a string",
  number: "a number",
  int: "an integer",
  boolean: "true or false",
  record: "a mapping",
};

function listValues(values: readonly unknown[]): string {
  return values.map((v) => (typeof v === "string" ? v : JSON.stringify(v))).join(", ");
}

function describeIssue(issue: Issue, raw: unknown): Problem[] {
  const path = issue.path.map((p) => (typeof p === "symbol" ? String(p) : p)) as PathSegment[];
  const here = valueAt(raw, path);
  const missing = !here.found || here.value === undefined;
  switch (issue.code) {
    case "unrecognized_keys": {
      const known = knownKeys(path);
      return issue.keys.map((k) => {
        const hint = suggest(k, known);
        const tail = hint ? ` (did you mean "${hint}"?)` : known.length ? ` (known fields: ${known.join(", ")})` : "";
        return { path: [...path, k], message: `unknown field "${k}"${tail}`, atKey: true };
      });
    }
    case "invalid_type": {
      if (missing) return [{ path, message: "required field is missing" }];
      if (issue.expected === "int") return [{ path, message: `must be a whole number, got ${show(here.value)}` }];
      const want = typeWords[issue.expected] ?? issue.expected;
      return [{ path, message: `must be ${want}, got ${kindOf(here.value)}` }];
    }
    case "invalid_value": {
      if (missing) return [{ path, message: `required field is missing (one of ${listValues(issue.values)})` }];
      if (issue.values.length === 1) return [{ path, message: `must be ${JSON.stringify(issue.values[0])}, got ${show(here.value)}` }];
      return [{ path, message: `${show(here.value)} is not one of ${listValues(issue.values)}` }];
    }
    case "invalid_union": {
      const values: unknown[] = [];
      for (const branch of issue.errors) for (const sub of branch) if (sub.code === "invalid_value") values.push(...sub.values);
      if (missing) return [{ path, message: "required field is missing" }];
      if (values.length) return [{ path, message: `${show(here.value)} is not one of ${listValues(values)}` }];
      return [{ path, message: `${show(here.value)} is not valid here` }];
    }
    case "too_small": {
      const min = Number(issue.minimum);
      if (issue.origin === "array") return [{ path, message: min === 1 ? "must not be empty (at least 1 item)" : `must have at least ${min} items` }];
      if (issue.origin === "string") return [{ path, message: min === 1 ? "must not be empty" : `must be at least ${min} characters` }];
      return [{ path, message: `must be ${issue.inclusive ? "at least" : "more than"} ${min}, got ${show(here.value)}` }];
    }
    case "too_big": {
      const max = Number(issue.maximum);
      if (issue.origin === "array") return [{ path, message: `must have at most ${max} items` }];
      if (issue.origin === "string") return [{ path, message: `must be at most ${max} characters` }];
      return [{ path, message: `must be ${issue.inclusive ? "at most" : "less than"} ${max}, got ${show(here.value)}` }];
    }
    case "invalid_format":
      return [{ path, message: `${show(here.value)} ${issue.message.startsWith("must") ? issue.message : `is not valid (${issue.message})`}` }];
    default:
      return [{ path, message: issue.message }];
  }
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1].toLowerCase() === b[j - 1].toLowerCase() ? 0 : 1));
  return d[a.length][b.length];
}

function suggest(key: string, known: string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const dd = distance(key, k);
    if (dd < bestD) {
      best = k;
      bestD = dd;
    }
  }
  return best !== undefined && bestD <= Math.max(2, Math.floor(key.length / 3)) ? best : undefined;
}

/** The field names the schema allows at an object path (walks the zod schema). */
export function knownKeys(path: readonly PathSegment[]): string[] {
  let s: unknown = clusterSchema;
  const unwrap = (x: unknown): unknown => {
    for (let i = 0; i < 10; i++) {
      const def = (x as { _zod?: { def?: { type?: string; innerType?: unknown } } })?._zod?.def;
      if (def && (def.type === "default" || def.type === "prefault" || def.type === "optional" || def.type === "nullable") && def.innerType) x = def.innerType;
      else break;
    }
    return x;
  };
  s = unwrap(s);
  for (const seg of path) {
    const def = (s as { _zod?: { def?: { type?: string; shape?: Record<string, unknown>; element?: unknown } } })?._zod?.def;
    if (!def) return [];
    if (def.type === "object" && typeof seg === "string" && def.shape) s = unwrap(def.shape[seg]);
    else if (def.type === "array" && typeof seg === "number") s = unwrap(def.element);
    else return [];
  }
  const def = (s as { _zod?: { def?: { type?: string; shape?: Record<string, unknown> } } })?._zod?.def;
  return def?.type === "object" && def.shape ? Object.keys(def.shape) : [];
}

/** Every key given twice in one mapping, with the path of the second one. */
function duplicateKeys(node: unknown, path: PathSegment[]): Array<{ path: PathSegment[]; key: string; offset: number; firstOffset: number }> {
  const out: Array<{ path: PathSegment[]; key: string; offset: number; firstOffset: number }> = [];
  if (isMap(node)) {
    const seen = new Map<string, number>();
    for (const pair of node.items) {
      const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
      const offset = (pair.key as Node | null)?.range?.[0] ?? 0;
      const first = seen.get(key);
      if (first !== undefined) out.push({ path: [...path, key], key, offset, firstOffset: first });
      else seen.set(key, offset);
      out.push(...duplicateKeys(pair.value, [...path, key]));
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => out.push(...duplicateKeys(item, [...path, i])));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// paths -> positions in the YAML text

interface Pos {
  line: number;
  col: number;
}

/**
 * The position of the node at `path`, or of the deepest existing ancestor when the path does not
 * exist in the text (a missing field, or a value that came from a default).
 */
export function locate(doc: Document, lc: LineCounter, path: readonly PathSegment[], atKey: boolean): Pos {
  const posOf = (n: Node | null | undefined): Pos | undefined => (n?.range ? lc.linePos(n.range[0]) : undefined);
  let node: unknown = doc.contents;
  let best: Pos = posOf(doc.contents as Node) ?? { line: 1, col: 1 };
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const last = i === path.length - 1;
    if (isAlias(node)) node = node.resolve(doc);
    if (isMap(node)) {
      const pair = node.items.find((p) => (isScalar(p.key) ? String(p.key.value) : String(p.key)) === String(seg));
      if (!pair) return best;
      const keyPos = posOf(pair.key as Node);
      if (last && atKey) return keyPos ?? best;
      const valuePos = posOf(pair.value as Node);
      best = valuePos ?? keyPos ?? best;
      node = pair.value;
      if (!valuePos) return best;
    } else if (isSeq(node) && typeof seg === "number") {
      const item = node.items[seg];
      const p = posOf(item as Node);
      if (!p) return best;
      best = p;
      node = item;
    } else {
      return best;
    }
  }
  return best;
}
