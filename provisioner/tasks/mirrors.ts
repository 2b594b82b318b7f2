// Phase "prepare", task "prepare/registry-mirrors": containerd's registry host files from
// spec.registryMirrors, /etc/containerd/certs.d/<registry>/hosts.toml (mode 0644, written
// atomically). containerd reads them at each pull (config.toml's config_path points there), so a
// change needs no restart. Files kubeprov wrote for a registry the cluster file no longer lists are
// removed; files without kubeprov's header are the operator's and are left alone.
import { CONTAINERD_CERTS_DIR } from "../constants.js";
import { fileDifferences, fileStateCommand, parseFileState, sha256Hex } from "../engine/file-task.js";
import { hostsTomlFiles } from "../images/registries.js";
import { parseSections, SECTION_PREFIX } from "../preflight/gather.js";
import { shq } from "../transport/transport.js";
import type { CheckResult, Host, RunContext, Task } from "../engine/task.js";

export const PREPARE_MIRRORS_TASK = "prepare/registry-mirrors";
const MODE = 0o644;
/** The first line of every hosts.toml kubeprov writes (templates/containerd/hosts.toml). */
const MANAGED_HEADER = "# managed by kubeprov";

interface MirrorsState {
  /** Wanted files whose content or mode differ, with why. */
  write: Array<{ path: string; content: string; why: string }>;
  /** kubeprov's files for registries no longer in the cluster file. */
  remove: string[];
}

/** One read-only command: each wanted file's state, and which hosts.toml files kubeprov wrote. */
function stateScript(paths: string[]): string {
  const s = (n: string) => `echo ${shq(SECTION_PREFIX + n)}`;
  return [
    ...paths.flatMap((p, i) => [s(`file${i}`), `(${fileStateCommand(p)})`]),
    s("managed"),
    `for f in ${shq(CONTAINERD_CERTS_DIR)}/*/hosts.toml; do [ -f "$f" ] && head -n1 "$f" | grep -q ${shq(`^${MANAGED_HEADER}`)} && echo "$f"; done; true`,
  ].join("\n");
}

async function mirrorsState(host: Host, ctx: RunContext): Promise<MirrorsState> {
  const files = hostsTomlFiles(ctx.cluster.spec.registryMirrors);
  const out = await host.transport.exec(stateScript(files.map((f) => f.path)), { sudo: true });
  const sections = parseSections(out.stdout);
  const write = files.flatMap((f, i) => {
    const diffs = fileDifferences(parseFileState(sections[`file${i}`] ?? "absent"), { sha256: sha256Hex(f.content), mode: MODE });
    return diffs.length ? [{ path: f.path, content: f.content, why: diffs.join(", ") }] : [];
  });
  const wanted = new Set(files.map((f) => f.path));
  const remove = (sections["managed"] ?? "").split("\n").map((l) => l.trim()).filter((p) => p && !wanted.has(p));
  return { write, remove };
}

export function registryMirrorsTask(): Task {
  return {
    name: PREPARE_MIRRORS_TASK,
    phase: "prepare",
    description: `registry mirrors as containerd host files (${CONTAINERD_CERTS_DIR}/<registry>/hosts.toml), read at each pull`,
    hosts: (ctx) => ctx.hosts,
    perHost: true,
    async check(host, ctx): Promise<CheckResult> {
      const st = await mirrorsState(host, ctx);
      const todo = [...st.write.map((w) => `${w.path} (${w.why})`), ...st.remove.map((p) => `remove ${p}`)];
      const n = Object.keys(ctx.cluster.spec.registryMirrors).length;
      return todo.length ? { needed: true, reason: todo.join(", ") } : { needed: false, reason: n ? `${n} registry host file(s) up to date` : "no registry mirrors" };
    },
    async apply(host, ctx) {
      const st = await mirrorsState(host, ctx);
      for (const w of st.write) await host.transport.writeFile(w.path, w.content, { mode: MODE });
      if (st.remove.length) {
        // The file, then its directory when nothing else is left in it (certificates stay).
        const script = st.remove.map((p) => `rm -f -- ${shq(p)} && rmdir -- ${shq(p.replace(/\/hosts\.toml$/, ""))} 2>/dev/null; true`).join("\n");
        await host.transport.exec(script, { sudo: true });
      }
      return { detail: [...st.write.map((w) => `wrote ${w.path}`), ...st.remove.map((p) => `removed ${p}`)].join(", ") };
    },
  };
}
