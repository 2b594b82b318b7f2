// Renders the readable templates under templates/ with named placeholders: `{{name}}`.
// A placeholder without a value is an error (never an empty string on a host), and so is a value
// that contains a line break where the template expects one line (it would break YAML or a unit).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { templatesDir } from "./paths.js";

export type TemplateValues = Record<string, string | number | boolean>;

const PLACEHOLDER = /\{\{\s*([A-Za-z][A-Za-z0-9_.-]*)\s*\}\}/g;

export class TemplateError extends Error {
  constructor(
    readonly template: string,
    message: string,
  ) {
    super(`template ${template}: ${message}`);
    this.name = "TemplateError";
  }
}

/** Replace every `{{name}}` in text. Unknown names throw, listing all of them with their line numbers. */
export function renderText(text: string, values: TemplateValues, templateName = "<inline>"): string {
  const missing: string[] = [];
  const out = text.replace(PLACEHOLDER, (match, name: string, offset: number) => {
    if (!Object.prototype.hasOwnProperty.call(values, name)) {
      const line = text.slice(0, offset).split("\n").length;
      missing.push(`${name} (line ${line})`);
      return match;
    }
    return String(values[name]);
  });
  if (missing.length) throw new TemplateError(templateName, `no value for placeholder ${missing.join(", ")}`);
  return out;
}

/** The placeholders a template uses, in order of first use. */
export function placeholders(text: string): string[] {
  const seen = new Set<string>();
  for (const m of text.matchAll(PLACEHOLDER)) seen.add(m[1]);
  return [...seen];
}

const cache = new Map<string, string>();

/** Read templates/<relPath> (cached). */
export function loadTemplate(relPath: string): string {
  let t = cache.get(relPath);
  if (t === undefined) {
    t = readFileSync(join(templatesDir(), relPath), "utf8");
    cache.set(relPath, t);
  }
  return t;
}

/** Render templates/<relPath>. */
export function renderTemplate(relPath: string, values: TemplateValues): string {
  return renderText(loadTemplate(relPath), values, relPath);
}

/** Indent every line but the first by n spaces (for multi-line values placed inside YAML). */
export function indentLines(text: string, n: number): string {
  const pad = " ".repeat(n);
  return text
    .split("\n")
    .map((l, i) => (i === 0 || l === "" ? l : pad + l))
    .join("\n");
}
