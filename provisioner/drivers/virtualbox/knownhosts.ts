// The cluster's known_hosts for VMs: host keys are only known at a VM's first boot (cloud-init
// prints them to the serial console once per instance), so the file itself is the record. Entries
// of other nodes are kept as they are; a node's entries are replaced when its keys are read again
// and dropped when it is deleted.
import { existsSync, readFileSync } from "node:fs";
import { knownHostsLines, writeFileAtomic } from "../localfiles.js";

/** The host names (and addresses) that have at least one entry in the file. */
export function knownHostNames(file: string): Set<string> {
  const text = existsSync(file) ? readFileSync(file, "utf8") : "";
  return new Set(text.split("\n").filter((l) => l.trim() && !l.startsWith("#")).flatMap((l) => l.split(/\s+/)[0].split(",")));
}

export function rewriteKnownHosts(file: string, add: Array<{ names: string[]; keys: string[] }>, remove: string[] = []): void {
  const drop = new Set([...remove, ...add.flatMap((e) => e.names)]);
  const kept = (existsSync(file) ? readFileSync(file, "utf8") : "")
    .split("\n")
    .filter((line) => line.trim() && !line.split(/\s+/)[0].split(",").some((name) => drop.has(name)));
  const text = kept.map((l) => `${l}\n`).join("") + knownHostsLines(add);
  writeFileAtomic(file, text, 0o644);
}
