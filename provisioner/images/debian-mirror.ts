// Where debootstrap fetches Debian from on the machine kubeprov runs on: that machine's apt sources.
// Both Debian roots kubeprov builds use it: the node image (drivers/docker/nodeimage.ts) and the
// base of the images that need userland tools (images/build.ts).
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { RuntimeFailure } from "../errors.js";

/**
 * The Debian mirror for debootstrap: $KUBEPROV_DEBIAN_MIRROR, else the first `URIs:` of a deb822
 * stanza in /etc/apt/sources.list.d/*.sources whose suites include the suite, else the first
 * `deb URI suite` line of /etc/apt/sources.list(.d/*.list).
 */
export function debianMirror(suite: string, aptDir = "/etc/apt"): string {
  if (process.env.KUBEPROV_DEBIAN_MIRROR) return process.env.KUBEPROV_DEBIAN_MIRROR;
  const found = findMirror(readAptSources(aptDir), suite);
  if (found) return found;
  throw new RuntimeFailure(
    `cannot find a Debian mirror for ${suite} in ${aptDir}/sources.list.d/*.sources or sources.list; set KUBEPROV_DEBIAN_MIRROR`,
  );
}

function readAptSources(aptDir: string): Array<{ name: string; text: string }> {
  const out: Array<{ name: string; text: string }> = [];
  const d = join(aptDir, "sources.list.d");
  if (existsSync(d)) {
    for (const f of readdirSync(d).sort()) if (f.endsWith(".sources") || f.endsWith(".list")) out.push({ name: f, text: readFileSync(join(d, f), "utf8") });
  }
  if (existsSync(join(aptDir, "sources.list"))) out.push({ name: "sources.list", text: readFileSync(join(aptDir, "sources.list"), "utf8") });
  return out;
}

/** Pure: picks the mirror URI from apt source files (deb822 .sources or one-line .list). */
export function findMirror(files: Array<{ name: string; text: string }>, suite: string): string | undefined {
  for (const f of files) {
    if (f.name.endsWith(".sources")) {
      for (const stanza of f.text.split(/\n\s*\n/)) {
        const fields = new Map<string, string>();
        for (const line of stanza.split("\n")) {
          if (line.startsWith("#")) continue;
          const m = /^([A-Za-z-]+):\s*(.*)$/.exec(line);
          if (m) fields.set(m[1].toLowerCase(), m[2].trim());
        }
        const types = (fields.get("types") ?? "").split(/\s+/);
        const suites = (fields.get("suites") ?? "").split(/\s+/);
        const uris = (fields.get("uris") ?? "").split(/\s+/).filter(Boolean);
        if ((fields.get("enabled") ?? "yes") === "no") continue;
        if (types.includes("deb") && suites.includes(suite) && uris.length > 0) return uris[0];
      }
    } else {
      for (const line of f.text.split("\n")) {
        const m = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
        if (m && m[2] === suite) return m[1];
      }
    }
  }
  return undefined;
}
