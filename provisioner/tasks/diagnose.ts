// Known causes of a control plane that does not come up, matched against log lines: what it
// means and what to do. Pure (the wait task gathers the logs; this names the cause).

export interface KnownCause {
  id: string;
  /** Matched against the logs (kubelet journal, container logs, unit journals). */
  pattern: RegExp;
  explain: (match: RegExpMatchArray) => string;
}

export const KNOWN_CAUSES: KnownCause[] = [
  {
    id: "unknown-flag",
    pattern: /(unknown flag|unknown shorthand flag|flag provided but not defined):? ?(\S*)/i,
    explain: (m) => `a flag the program does not know: ${m[2] || "(see the log)"}. Check spec.controlPlane.extraArgs in the cluster file (flags are written without the leading --) against this Kubernetes version.`,
  },
  {
    id: "invalid-flag-value",
    pattern: /invalid argument "([^"]*)" for "(--?[\w-]+)"/i,
    explain: (m) => `the value "${m[1]}" is not valid for ${m[2]}. Check spec.controlPlane.extraArgs in the cluster file.`,
  },
  {
    id: "port-in-use",
    pattern: /(bind: address already in use|listen tcp [^ ]*:(\d+).*address already in use)/i,
    explain: (m) => `a port is already in use${m[2] ? ` (${m[2]})` : ""}: another process (an old control plane, or a second kubelet) holds it. Run \`kubeprov reset\` or stop that process.`,
  },
  {
    id: "swap",
    pattern: /running with swap on is not supported|swap is enabled/i,
    explain: () => "swap is on and the kubelet refuses it: turn swap off (`swapoff -a` and remove it from /etc/fstab) or set failSwapOn: false through spec.controlPlane.extraArgs.kubelet.",
  },
  {
    id: "cgroup-driver",
    pattern: /misconfiguration: kubelet cgroup driver: "(\w+)" is different from docker cgroup driver: "(\w+)"|cgroup driver.*(mismatch|different)|expected cgroupsPath to be of format "slice:prefix:name"/i,
    explain: () => "the kubelet's cgroup driver differs from the container runtime's: set spec.containerRuntime.cgroupDriver to what containerd uses (SystemdCgroup in /etc/containerd/config.toml) and re-run.",
  },
  {
    id: "cgroup-v1",
    pattern: /cgroup v1 support is (unsupported|in maintenance)|failCgroupV1/i,
    explain: () => "this Kubernetes refuses cgroup v1 hosts unless failCgroupV1 is false in the kubelet configuration (kubeprov sets it when facts report cgroup v1: were facts gathered?).",
  },
  {
    id: "cri-socket",
    pattern: /(containerd\.sock|cri-dockerd\.sock|crio\.sock)[^\n]*(no such file or directory|connection refused)|container runtime is down|validate service connection: .*rpc error/i,
    explain: () => "the container runtime socket is missing or not answering: check `systemctl status containerd` and spec.containerRuntime.criSocket.",
  },
  {
    id: "certificate-sans",
    pattern: /x509: certificate is valid for ([^,\n]+(?:, [^,\n]+)*), not (\S+)/i,
    explain: (m) => `a certificate does not name ${m[2]} (it names ${m[1]}): add the address to spec.controlPlane.certSANs, then re-run certs (the leaf is re-issued from the same CA).`,
  },
  {
    id: "certificate-unknown-authority",
    pattern: /x509: certificate signed by unknown authority/i,
    explain: () => "a certificate is not signed by the CA the other side trusts: the CA changed under an existing leaf. Run `kubeprov certs check-expiration` and `kubeprov reset` if the PKI was replaced.",
  },
  {
    id: "proc-sys-read-only",
    pattern: /open \/proc\/sys\/[^:]+: read-only file system|failed to set sysctl/i,
    explain: () => "the kubelet could not write a kernel setting under /proc/sys, read-only in a node container: the node's boot fix-ups (bind-mounted values for vm.overcommit_memory, kernel.panic, kernel.panic_on_oops) are missing. Restart the node (`kubeprov node restart`) or check its boot service.",
  },
  {
    id: "image-missing",
    pattern: /(failed to pull (and unpack )?image|ErrImageNeverPull|image ?(not present|.*not found))[^\n]*?((registry\.k8s\.io|[\w.-]+\/)[\w./-]+:[\w.-]+)?/i,
    explain: (m) => `an image is missing on the node${m[4] ? ` (${m[4]})` : ""}: nothing can be pulled here. Run the prepare phase again (\`kubeprov init phase prepare\`), which imports the bundle's images.`,
  },
  {
    id: "etcd-unreachable",
    pattern: /(dial tcp 127\.0\.0\.1:2379: connect: connection refused|context deadline exceeded.*etcd|etcdserver: request timed out)/i,
    explain: () => "kube-apiserver cannot reach etcd: look at etcd's log above (certificates under /etc/kubernetes/pki/etcd, data in /var/lib/etcd).",
  },
  {
    id: "dev-kmsg",
    pattern: /open \/dev\/kmsg: no such file or directory/i,
    explain: () => "/dev/kmsg is missing in the node container: the node's boot fix-ups did not run (they create it). Restart the node.",
  },
];

export interface Diagnosis {
  id: string;
  advice: string;
}

/** Every known cause found in the text (first match of each), most specific first (table order). */
export function matchKnownCauses(text: string): Diagnosis[] {
  const out: Diagnosis[] = [];
  for (const c of KNOWN_CAUSES) {
    const m = text.match(c.pattern);
    if (m) out.push({ id: c.id, advice: c.explain(m) });
  }
  return out;
}
