// The admin kubeconfig of a driver-made cluster, merged into the user's kubeconfig as context NAME
// (the first file of $KUBECONFIG, else ~/.kube/config), and removed from it again by `delete`.
// Written atomically with mode 0600: it holds a client key.
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { dirname, join, delimiter } from "node:path";
import { parse, stringify } from "yaml";
import { writeFileAtomic } from "./localfiles.js";

export function userKubeconfigPath(): string {
  const env = process.env.KUBECONFIG?.split(delimiter).find((p) => p.trim());
  return env ?? join(homedir(), ".kube", "config");
}

interface Named {
  name: string;
  [k: string]: unknown;
}
interface KubeconfigDoc {
  apiVersion?: string;
  kind?: string;
  clusters?: Named[];
  users?: Named[];
  contexts?: Named[];
  "current-context"?: string;
  preferences?: unknown;
  [k: string]: unknown;
}

/** Pure: `base` with the cluster, user and context of `admin` renamed to NAME / NAME-admin / NAME. */
export function mergeKubeconfig(baseText: string, adminText: string, name: string): string {
  const base = (parse(baseText || "") as KubeconfigDoc | null) ?? {};
  const admin = parse(adminText) as KubeconfigDoc;
  const cluster = admin.clusters?.[0];
  const user = admin.users?.[0];
  if (!cluster || !user) throw new Error("the admin kubeconfig has no cluster or no user");
  const userName = `${name}-admin`;
  const out: KubeconfigDoc = { apiVersion: "v1", kind: "Config", preferences: {}, ...stripNamed(base, name, userName) };
  out.clusters = [...(out.clusters ?? []), { ...cluster, name }];
  out.users = [...(out.users ?? []), { ...user, name: userName }];
  out.contexts = [...(out.contexts ?? []), { name, context: { cluster: name, user: userName } }];
  out["current-context"] = name;
  return stringify(out, { lineWidth: 0 });
}

/** Pure: `base` without NAME's cluster, user and context (current-context cleared when it was NAME). */
export function unmergeKubeconfig(baseText: string, name: string): { text: string; changed: boolean } {
  const base = (parse(baseText || "") as KubeconfigDoc | null) ?? {};
  const out = stripNamed(base, name, `${name}-admin`);
  const changed =
    (base.clusters?.length ?? 0) !== (out.clusters?.length ?? 0) ||
    (base.users?.length ?? 0) !== (out.users?.length ?? 0) ||
    (base.contexts?.length ?? 0) !== (out.contexts?.length ?? 0) ||
    base["current-context"] !== out["current-context"];
  return { text: stringify(out, { lineWidth: 0 }), changed };
}

function stripNamed(doc: KubeconfigDoc, name: string, userName: string): KubeconfigDoc {
  const out: KubeconfigDoc = { ...doc };
  if (doc.clusters) out.clusters = doc.clusters.filter((c) => c.name !== name);
  if (doc.users) out.users = doc.users.filter((u) => u.name !== userName);
  if (doc.contexts) out.contexts = doc.contexts.filter((c) => c.name !== name);
  if (doc["current-context"] === name) out["current-context"] = "";
  return out;
}

export function installKubeconfig(adminText: string, name: string): string {
  const path = userKubeconfigPath();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const base = existsSync(path) ? readFileSync(path, "utf8") : "";
  writeFileAtomic(path, mergeKubeconfig(base, adminText, name), 0o600);
  return path;
}

export function uninstallKubeconfig(name: string): string | undefined {
  const path = userKubeconfigPath();
  if (!existsSync(path)) return undefined;
  const { text, changed } = unmergeKubeconfig(readFileSync(path, "utf8"), name);
  if (!changed) return undefined;
  writeFileAtomic(path, text, 0o600);
  return path;
}
