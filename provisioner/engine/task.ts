// A task: a small named unit with a cheap check and an apply, run by the runner on some hosts.
import type { Cluster, HostSpec, Role } from "../spec/schema.js";
import type { Transport } from "../transport/transport.js";
import type { Reporter } from "../events.js";

/** Facts about a host, gathered once by the facts task and read by later tasks. */
export interface HostFacts {
  os: { id: string; versionId: string; prettyName: string; idLike: string[] };
  kernel: string;
  /** Kubernetes/Go name of the CPU architecture (amd64, arm64, arm, ppc64le, s390x), mapped from `uname -m`. */
  arch: string;
  /** `uname -m` as printed (x86_64, aarch64, …). */
  machine?: string;
  cpus: number;
  memoryMB: number;
  hostname: string;
  /** Running inside a container (docker driver node, /.dockerenv or /run/systemd/container). */
  container: boolean;
  cgroupVersion: 1 | 2;
  /** The init system is systemd (PID 1). */
  systemd: boolean;
  packageManager: "apt" | "dnf" | "yum" | "unknown";
  /** kubeadm's /etc/kubernetes/pki/ca.crt exists: the host was already set up as a node. */
  clusterCa?: boolean;
}

/** A host as the runner sees it: its spec, how to reach it, and the facts once gathered. */
export interface Host {
  name: string;
  /** Address used for SSH. */
  address: string;
  /** The node's own IP in the cluster network (internalAddress, else address). */
  nodeIP: string;
  roles: Role[];
  spec: HostSpec;
  transport: Transport;
  facts?: HostFacts;
}

export interface CheckResult {
  /** true when apply must run. */
  needed: boolean;
  /** What would change, or why nothing does ("kubelet.service already active"). */
  reason?: string;
}

export interface ApplyResult {
  /** Optional detail shown with "changed". */
  detail?: string;
}

/** State shared by every task of one run. */
export interface RunContext {
  cluster: Cluster;
  /** The file the cluster came from (for messages), or "<generated>". */
  source: string;
  hosts: Host[];
  reporter: Reporter;
  dryRun: boolean;
  /** Values tasks hand each other within one run (e.g. the bootstrap token). Keyed by a name. */
  shared: Map<string, unknown>;
  /** Options from the command line that tasks read (e.g. ignorePreflightErrors, fix). */
  options: Record<string, unknown>;
  /**
   * Set when the run joins its hosts to a cluster it reaches only through the API (`kubeprov join
   * ENDPOINT` on the joining machine): none of the cluster's own hosts is in `hosts`, so nothing is
   * read from the first control plane; the CA, the API server and the token come from here.
   */
  joinTo?: JoinTarget;
  /** Emit a log event. Never pass secrets. */
  log(level: "debug" | "info" | "warn" | "error", message: string, host?: Host, task?: string): void;
}

/** An existing cluster as token discovery found it: its API server, its CA certificate (checked against the CA hash) and the bootstrap token. */
export interface JoinTarget {
  /** https://host:port of the API server (the controlPlaneEndpoint cluster-info names). */
  server: string;
  /** The cluster CA certificate (PEM). */
  ca: Buffer;
  /** The bootstrap token ("id.secret"): a secret, never logged. */
  token: string;
}

export interface Task {
  /** Unique, "phase/name", e.g. "certs/ca". */
  name: string;
  /** The phase it belongs to ("preflight", "prepare", "certs", …), for --skip-phases and output. */
  phase: string;
  description: string;
  /** Which hosts it runs on (e.g. control planes only, or only the first control plane). */
  hosts(ctx: RunContext): Host[];
  /** Names of tasks that must have finished (on all their hosts) before this one starts. */
  after?: string[];
  /**
   * true: run on one host at a time, in host order (e.g. etcd member add). "first": the first host
   * alone, then all the others together (e.g. the first control plane makes the CAs the others
   * read). When it fails on a host, it is not started on the hosts that wait for it (they are
   * reported skipped).
   */
  serial?: boolean | "first";
  /**
   * How `after` is read. Default (false): on every host this task waits until each named task has
   * finished on ALL of that task's hosts. true: on a host it waits only for the named tasks on the
   * SAME host (a named task that does not run on this host is still waited for on all its hosts),
   * so a failure on one host stops only that host's chain and the other hosts go on.
   */
  perHost?: boolean;
  /**
   * apply only reads (e.g. gathering facts): it also runs in a dry run, and the runner reports
   * status ok (not changed) after it.
   */
  readOnly?: boolean;
  /**
   * What apply mostly waits on, when it waits rather than works (e.g. "the API server's /readyz"):
   * `--timings` lists these tasks as waits.
   */
  waitsFor?: string;
  /**
   * The check reads only the host, the cluster file and the cluster through the API, never what
   * other tasks of the run hand on (ctx.shared values they set): the runner may then run it ahead
   * of its turn, once the prerequisites (facts) are done and while nothing in the run has changed
   * anything, and keeps that answer when none of the tasks it comes after changed anything (a
   * converged cluster's checks then run side by side instead of one dependency after another).
   */
  checkAhead?: boolean;
  /**
   * Read-only work that gets the apply's CPU-bound part under way early (the PKI generates the keys
   * its plan will create): called once the prerequisites (facts) are done, on every host of the
   * task, beside the regular work, and never in a dry run. Must change nothing on any host; what it
   * starts is dropped when `signal` aborts (the run ended). A failure is ignored: apply then does
   * the work itself.
   */
  prepare?(host: Host, ctx: RunContext, signal: AbortSignal): Promise<void>;
  /** Cheap, read-only: is apply needed on this host? Must change nothing. */
  check(host: Host, ctx: RunContext): Promise<CheckResult>;
  apply(host: Host, ctx: RunContext): Promise<ApplyResult | void>;
  /** Undo a half-done apply, called when apply throws. */
  cleanup?(host: Host, ctx: RunContext): Promise<void>;
}
