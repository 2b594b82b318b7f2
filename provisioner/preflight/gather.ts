// Everything preflight needs from a host, in ONE remote command: a POSIX shell script that prints
// named sections. The checks then evaluate the captured text with pure functions (checks.ts), so
// every rule is unit-testable on outputs captured from real hosts.
import { KNOWN_CRI_SOCKETS } from "./cri.js";
import { BIN_DIR, CLUSTER_MARKER_FILE, ETCD_DATA_DIR, KUBERNETES_DIR, PKI_DIR } from "../constants.js";
import { CONFIG_MAP_KEY, CONFIG_MAP_NAME } from "../bootstrap/manifests.js";
import { shq } from "../transport/transport.js";

export const SECTION_PREFIX = "@@kubeprov-section ";

/** Files whose presence means "kubeadm-style files would be overwritten" (kubeadm's FileAvailable checks). */
export const CONTROL_PLANE_FILES = [
  "/etc/kubernetes/manifests/kube-apiserver.yaml",
  "/etc/kubernetes/manifests/kube-controller-manager.yaml",
  "/etc/kubernetes/manifests/kube-scheduler.yaml",
  "/etc/kubernetes/manifests/etcd.yaml",
] as const;
export const NODE_FILES = ["/etc/kubernetes/kubelet.conf", "/etc/kubernetes/bootstrap-kubelet.conf"] as const;

export const REQUIRED_BINARIES = ["iptables", "conntrack", "socat", "mount", "ip", "nsenter"] as const;
export const OPTIONAL_BINARIES = ["ethtool", "ebtables", "tc"] as const;

export const MODULES = ["br_netfilter", "overlay"] as const;
export const SYSCTLS = ["net.ipv4.ip_forward", "net.bridge.bridge-nf-call-iptables"] as const;

export const SYSCTL_FILE = "/etc/sysctl.d/99-kubeprov.conf";
export const MODULES_FILE = "/etc/modules-load.d/kubeprov.conf";

export function sysctlPath(key: string): string {
  return "/proc/sys/" + key.replace(/\./g, "/");
}

/**
 * Listening unix socket paths, one a line: `ss -xlnH`, else /proc/net/unix (flag __SO_ACCEPTCON).
 * Prints nothing when neither is there (then "listening-known" says no).
 */
export const UNIX_LISTENING_SCRIPT =
  "if command -v ss >/dev/null 2>&1; then ss -xlnH 2>/dev/null | awk '{print $5}'; elif [ -r /proc/net/unix ]; then awk '$4 == \"00010000\" {print $NF}' /proc/net/unix; fi";
export const LISTENING_KNOWN_SCRIPT = "if command -v ss >/dev/null 2>&1 || [ -r /proc/net/unix ]; then echo yes; else echo no; fi";
/** Listening TCP sockets in `ss -ltnH` form: ss (with processes when allowed), else /proc/net/tcp{,6}. */
export const TCP_LISTENING_SCRIPT = [
  "if command -v ss >/dev/null 2>&1; then ss -ltnpH 2>/dev/null || ss -ltnH 2>/dev/null; else",
  "for f in /proc/net/tcp /proc/net/tcp6; do [ -r $f ] || continue; while read -r sl local rem st rest; do if [ \"$st\" = 0A ]; then printf 'LISTEN 0 0 %s:%d *:*\\n' \"${local%:*}\" \"0x${local#*:}\"; fi; done < $f; done; fi",
].join(" ");

/** The gather script. Read-only: it changes nothing on the host. */
/** What the script also probes, from the cluster file: the registry mirrors' URLs. */
export interface GatherProbes {
  mirrors?: string[];
}

/** curl's exit codes a mirror probe can end with, in words. */
export const CURL_FAILURES: Record<string, string> = {
  "6": "its host name does not resolve",
  "7": "the connection was refused or the address is unreachable",
  "28": "no answer within 5 s",
  "35": "the TLS handshake failed",
  "60": "its TLS certificate is not trusted",
};

/** Asks each mirror's /v2/ with curl; prints "URL CURL-EXIT HTTP-CODE" per mirror, or "- nocurl". */
export function mirrorProbeScript(urls: string[]): string {
  if (!urls.length) return "true";
  return `if command -v curl >/dev/null 2>&1; then for u in ${urls.map(shq).join(" ")}; do c=$(curl -s -o /dev/null -m 5 -w '%{http_code}' "\${u%/}/v2/"); echo "$u $? $c"; done; else echo "- nocurl"; fi`;
}

export function gatherScript(probes: GatherProbes = {}): string {
  const s = (name: string) => `echo ${shq(SECTION_PREFIX + name)}`;
  const sockets = KNOWN_CRI_SOCKETS.map(shq).join(" ");
  const files = [...CONTROL_PLANE_FILES, ...NODE_FILES].map(shq).join(" ");
  const bins = [...REQUIRED_BINARIES, ...OPTIONAL_BINARIES, "firewall-cmd", "ufw", "getenforce", "hostnamectl", "containerd", "docker", "crictl", "sha256sum", "modprobe", "sysctl", "systemctl"].join(" ");
  return [
    "export LC_ALL=C PATH=\"$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"",
    s("time"), "date +%s",
    s("uid"), "id -u",
    s("hostname"), "hostname",
    s("getent"), "getent hosts \"$(hostname)\" 2>/dev/null || true",
    s("nproc"), "nproc 2>/dev/null || getconf _NPROCESSORS_ONLN",
    s("meminfo"), "grep -E '^MemTotal:' /proc/meminfo",
    s("swaps"), "cat /proc/swaps 2>/dev/null || true",
    s("fstab"), "cat /etc/fstab 2>/dev/null || true",
    s("os-release"), "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release 2>/dev/null || true",
    s("container"), "if [ -f /.dockerenv ] || [ -f /run/.containerenv ] || [ -s /run/systemd/container ]; then echo yes; else echo no; fi",
    s("cgroupfs"), "stat -fc %T /sys/fs/cgroup 2>/dev/null || true",
    s("binaries"), `for b in ${bins}; do p=$(command -v "$b" 2>/dev/null) && echo "$b $p" || echo "$b -"; done`,
    s("firewalld"), "if command -v systemctl >/dev/null 2>&1; then systemctl is-active firewalld 2>/dev/null || true; fi",
    // firewall-cmd takes about 0.4 s to start (Python): asked only when systemd says firewalld runs.
    s("firewalld-ports"), "if command -v firewall-cmd >/dev/null 2>&1; then if command -v systemctl >/dev/null 2>&1 && [ \"$(systemctl is-active firewalld 2>/dev/null)\" != active ]; then :; elif firewall-cmd --state >/dev/null 2>&1; then firewall-cmd --list-ports 2>/dev/null; fi; fi",
    s("ufw"), "if command -v ufw >/dev/null 2>&1; then ufw status 2>/dev/null || true; fi",
    s("selinux"), "if command -v getenforce >/dev/null 2>&1; then getenforce 2>/dev/null; elif [ -r /sys/fs/selinux/enforce ]; then e=$(cat /sys/fs/selinux/enforce); [ \"$e\" = 1 ] && echo Enforcing || echo Permissive; else echo Disabled; fi",
    s("selinux-config"), "grep -E '^SELINUX=' /etc/selinux/config 2>/dev/null || true",
    s("sockets"), `for p in ${sockets}; do if [ -S "$p" ]; then echo "$p socket"; fi; done`,
    s("unix-listening"), UNIX_LISTENING_SCRIPT,
    s("listening-known"), LISTENING_KNOWN_SCRIPT,
    s("tcp-listening"), TCP_LISTENING_SCRIPT,
    s("proc-modules"), "if [ -r /proc/modules ]; then awk '{print $1}' /proc/modules; else echo '(no /proc/modules)'; fi",
    s("modules-builtin"), "f=/lib/modules/$(uname -r)/modules.builtin; [ -r \"$f\" ] && grep -E '/(br_netfilter|overlay)\\.ko' \"$f\" || true",
    s("kernel-config"), "if [ -r /proc/config.gz ]; then (zcat /proc/config.gz 2>/dev/null || gzip -dc /proc/config.gz) | grep -E '^CONFIG_(BRIDGE_NETFILTER|OVERLAY_FS)=' || true; elif [ -r \"/boot/config-$(uname -r)\" ]; then grep -E '^CONFIG_(BRIDGE_NETFILTER|OVERLAY_FS)=' \"/boot/config-$(uname -r)\" || true; fi",
    s("filesystems"), "grep -w overlay /proc/filesystems 2>/dev/null || true",
    s("bridge-sysctl-dir"), "[ -d /proc/sys/net/bridge ] && echo yes || echo no",
    s("modules-file"), `cat ${MODULES_FILE} 2>/dev/null || true`,
    s("sysctls"), ...SYSCTLS.map((k) => `printf '%s %s %s\\n' ${k} "$(cat ${sysctlPath(k)} 2>/dev/null || echo -)" "$( [ -w ${sysctlPath(k)} ] && echo rw || echo ro)"`),
    s("sysctl-file"), `cat ${SYSCTL_FILE} 2>/dev/null || true`,
    s("containerd-config"), "grep -E 'SystemdCgroup|managed by kubeprov' /etc/containerd/config.toml 2>/dev/null || true",
    s("docker-cgroup-driver"), "if command -v docker >/dev/null 2>&1 && [ -S /var/run/docker.sock ]; then docker info --format '{{.CgroupDriver}}' 2>/dev/null || true; fi",
    s("existing-files"), `for f in ${files} ${shq(PKI_DIR + "/ca.crt")}; do [ -e "$f" ] && echo "$f"; done; true`,
    s("etcd-dir"), `[ -d ${shq(ETCD_DATA_DIR)} ] && ls -A ${shq(ETCD_DATA_DIR)} | head -5 || true`,
    s("marker"), `cat ${shq(CLUSTER_MARKER_FILE)} 2>/dev/null || true`,
    // On a control plane of a running cluster: the cluster file it was last converged to (the
    // upload-config phase's ConfigMap), so a change that cannot be applied to a running cluster
    // (its network add-on, its pod or Service subnet) is refused before anything changes.
    s("stored-cluster"), `if [ -s ${KUBERNETES_DIR}/admin.conf ] && [ -x ${BIN_DIR}/kubectl ]; then ${BIN_DIR}/kubectl --kubeconfig=${KUBERNETES_DIR}/admin.conf --request-timeout=5s -n kube-system get configmap ${CONFIG_MAP_NAME} -o go-template='{{index .data "${CONFIG_MAP_KEY}"}}' 2>/dev/null || true; fi`,
    // "IFACE inet|inet6 ADDR/PREFIX" per address (the HA virtual IP must be inside a subnet of its interface).
    s("addresses"), "ip -o addr show 2>/dev/null | awk '{print $2, $3, $4}' || true",
    // Whether this kernel can make a vxlan interface (flannel's vxlan backend): tried inside a
    // network namespace of its own that goes away with the command, so the host's is untouched.
    s("vxlan"), "if command -v unshare >/dev/null 2>&1 && command -v ip >/dev/null 2>&1; then if unshare -n ip link add kpvxlan0 type vxlan id 1 dstport 4789 >/dev/null 2>&1; then echo yes; else echo no; fi; else echo unknown; fi",
    // Each registry mirror's API root (/v2/, as containerd asks it), from this host: "URL EXIT HTTPCODE".
    s("mirrors"), mirrorProbeScript(probes.mirrors ?? []),
    s("end"),
  ].join("\n");
}

export type Sections = Record<string, string>;

/** Split the script's output into its sections (text without the trailing newline). */
export function parseSections(stdout: string): Sections {
  const out: Sections = {};
  let name: string | undefined;
  let buf: string[] = [];
  for (const line of stdout.split("\n")) {
    if (line.startsWith(SECTION_PREFIX)) {
      if (name !== undefined) out[name] = buf.join("\n").trim();
      name = line.slice(SECTION_PREFIX.length).trim();
      buf = [];
    } else if (name !== undefined) buf.push(line);
  }
  if (name !== undefined && name !== "end") out[name] = buf.join("\n").trim();
  return out;
}
