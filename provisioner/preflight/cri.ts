// CRI socket detection, kubeadm's rule in today's socket names (DESIGN.md "Points settled").
// Pure: it decides from the list of LISTENING unix sockets found on a host.

export const CRI_SOCKETS = {
  criDockerd: "/var/run/cri-dockerd.sock",
  containerd: "/run/containerd/containerd.sock",
  crio: "/var/run/crio/crio.sock",
  /** Legacy dockershim socket: not a CRI since Kubernetes 1.24. */
  docker: "/var/run/docker.sock",
} as const;

export const KNOWN_CRI_SOCKETS: readonly string[] = Object.values(CRI_SOCKETS);

export type CriRuntime = "containerd" | "docker" | "crio" | "other";

export type CriDecision =
  /** Use this socket (found, or given in the cluster file). */
  | { kind: "use"; socket: string; runtime: CriRuntime; reason: string }
  /** Nothing found: prepare installs containerd. */
  | { kind: "none"; reason: string }
  /** Cannot decide, or the socket found is not a CRI: fail and ask for criSocket. */
  | { kind: "error"; sockets: string[]; reason: string };

/** Same path whatever the /var/run vs /run spelling (on every systemd host /var/run -> /run). */
export function normaliseSocket(p: string): string {
  let s = p.replace(/^unix:\/\//, "");
  if (s.startsWith("/var/run/")) s = "/run/" + s.slice("/var/run/".length);
  return s;
}

export function runtimeOfSocket(p: string): CriRuntime {
  const s = normaliseSocket(p);
  if (s === normaliseSocket(CRI_SOCKETS.containerd)) return "containerd";
  if (s === normaliseSocket(CRI_SOCKETS.criDockerd)) return "docker";
  if (s === normaliseSocket(CRI_SOCKETS.crio)) return "crio";
  return "other";
}

/**
 * Decide which CRI socket to use.
 * @param listening the known sockets that are listening on the host (any spelling)
 * @param override criSocket from the host or spec.containerRuntime (wins over detection)
 */
export function decideCri(listening: string[], override?: string): CriDecision {
  if (override) {
    const socket = override.replace(/^unix:\/\//, "");
    return { kind: "use", socket, runtime: runtimeOfSocket(socket), reason: `criSocket ${socket} set in the cluster file` };
  }
  const found = new Set(listening.map(normaliseSocket));
  const has = (s: string) => found.has(normaliseSocket(s));
  const names = KNOWN_CRI_SOCKETS.filter(has);
  const criDockerd = has(CRI_SOCKETS.criDockerd);
  const containerd = has(CRI_SOCKETS.containerd);
  const crio = has(CRI_SOCKETS.crio);
  const docker = has(CRI_SOCKETS.docker);
  const ask = `set criSocket for this host in the cluster file (spec.hosts[].criSocket) to the one to use`;

  if (names.length === 0) return { kind: "none", reason: "no container runtime socket found: prepare installs and configures containerd" };
  // Docker ships containerd: cri-dockerd + containerd (+ docker.sock) means Docker.
  if (criDockerd && !crio) {
    return { kind: "use", socket: CRI_SOCKETS.criDockerd, runtime: "docker", reason: `Docker through cri-dockerd (${names.join(", ")} found; cri-dockerd wins)` };
  }
  if (names.length === 1 && containerd) return { kind: "use", socket: CRI_SOCKETS.containerd, runtime: "containerd", reason: "containerd found" };
  if (names.length === 1 && crio) return { kind: "use", socket: CRI_SOCKETS.crio, runtime: "crio", reason: "CRI-O found" };
  if (names.length === 1 && docker) {
    return {
      kind: "error",
      sockets: names,
      reason: `only ${CRI_SOCKETS.docker} found: Docker is not a CRI runtime since Kubernetes 1.24; install cri-dockerd (socket ${CRI_SOCKETS.criDockerd}) or use containerd, or ${ask}`,
    };
  }
  // docker.sock next to containerd and nothing else: Docker's own containerd; still ambiguous
  // for the kubelet (Docker without cri-dockerd is not a CRI) -> ask, as for any other pair.
  return { kind: "error", sockets: names, reason: `several container runtime sockets found: ${names.join(", ")}; ${ask}` };
}
