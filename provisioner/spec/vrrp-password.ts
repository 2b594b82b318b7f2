// The VRRP password of spec.ha.authentication: it lives in a file on the machine kubeprov runs on,
// never in the cluster file (which the cluster stores in kube-system/kubeprov-config). The file is
// read when the cluster file is loaded (so a bad one stops every command before any host is
// touched) and again when keepalived.conf is rendered. Messages name the file, its mode and what
// is wrong with the content, never the content.
import { readFileSync, statSync } from "node:fs";
import { dirname, isAbsolute, resolve } from "node:path";
import { expandHome } from "../paths.js";
import type { Cluster } from "./schema.js";
import type { Problem } from "./validate.js";

/** keepalived uses only the first 8 characters of auth_pass (VRRP v2's authentication data is 8 bytes). */
export const VRRP_PASSWORD_MAX = 8;
/** Characters keepalived's configuration parser takes literally in an unquoted word. */
const PASSWORD_CHARS = /^[A-Za-z0-9._,:+=@%^*~\/?-]+$/;
const PASSWORD_PATH = ["spec", "ha", "authentication", "passwordFile"];

/** The password file's path: "~" is the home directory; a relative path is next to the cluster file. */
export function vrrpPasswordPath(file: string, source: string): string {
  const p = expandHome(file);
  return isAbsolute(p) || source.startsWith("<") ? resolve(p) : resolve(dirname(source), p);
}

/** Reads and checks the password file; the password, or why it cannot be used. */
export function readVrrpPassword(file: string, source: string): { password: string } | { problem: string } {
  const path = vrrpPasswordPath(file, source);
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) return { problem: `${path} is not a regular file` };
    // The same rule OpenSSH applies to a private key: nobody but the owner may read or write it.
    if ((st.mode & 0o077) !== 0)
      return { problem: `${path} has mode 0${(st.mode & 0o777).toString(8)}: it holds a password, so group and others must have no access (chmod 600 ${path})` };
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (code ?? (e as Error).message);
    return { problem: `cannot read ${path} (${why})` };
  }
  // One trailing line break is how editors and `echo` end a file; it is not part of the password.
  const password = text.replace(/\r?\n$/, "");
  if (password.length === 0) return { problem: `${path} is empty; it must hold the VRRP password (1 to ${VRRP_PASSWORD_MAX} characters)` };
  if (password.length > VRRP_PASSWORD_MAX)
    return { problem: `the password in ${path} is longer than ${VRRP_PASSWORD_MAX} characters: VRRP v2 carries 8 bytes of it and keepalived ignores the rest, so use at most ${VRRP_PASSWORD_MAX}` };
  if (!PASSWORD_CHARS.test(password))
    return { problem: `the password in ${path} has a character keepalived.conf cannot hold as written (a space, line break, quote, #, !, $, braces or a non-ASCII one); use letters, digits and . _ , : + = @ % ^ * ~ / ? -` };
  return { password };
}

/** Problems with files the cluster file names on this machine (today: the VRRP password file). */
export function localFileProblems(cluster: Cluster, source: string): Problem[] {
  const auth = cluster.spec.ha.authentication;
  if (!cluster.spec.ha.enabled || !auth) return [];
  const r = readVrrpPassword(auth.passwordFile, source);
  return "problem" in r ? [{ path: PASSWORD_PATH, message: r.problem }] : [];
}
