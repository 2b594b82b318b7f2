// Semantic checks of a cluster that passed the schema: pure, returns every problem with the
// field path it is about (load.ts turns paths into file:line:col).
import {
  canonicalCIDR,
  cidrContains,
  cidrsOverlap,
  isDNSName,
  isSANDNSName,
  parseCIDR,
  parseHostPort,
  parseIP,
  splitList,
  type CIDR,
} from "./cidr.js";
import type { Cluster } from "./schema.js";
import { mirroredRegistryProblem, mirrorURLProblem, repositoryProblem } from "../images/registries.js";

export type PathSegment = string | number;

/** One problem found in a cluster file, before it is given a position. */
export interface Problem {
  path: PathSegment[];
  message: string;
  /** Point at the key of the last path segment instead of its value (unknown fields). */
  atKey?: boolean;
}

/** kube-apiserver refuses a service range of more than 20 host bits (IPv4 /12, IPv6 /108). */
const MAX_SERVICE_HOST_BITS = 20;
/** kube-controller-manager refuses more than 16 bits between the pod subnet and a node's range. */
const MAX_NODE_CIDR_DIFF = 16;

const NET = ["spec", "networking"] as const;

export function validateCluster(cluster: Cluster): Problem[] {
  const problems: Problem[] = [];
  const add = (path: PathSegment[], message: string) => problems.push({ path, message });
  const spec = cluster.spec;

  // --- networks ---------------------------------------------------------------------------
  const pods = subnetList(spec.networking.podSubnet, [...NET, "podSubnet"], "pod subnet", add);
  const services = subnetList(spec.networking.serviceSubnet, [...NET, "serviceSubnet"], "service subnet", add);
  for (const s of services) {
    const hostBits = (s.family === 4 ? 32 : 128) - s.prefix;
    if (hostBits > MAX_SERVICE_HOST_BITS)
      add([...NET, "serviceSubnet"], `${s.text} is too large: at most ${MAX_SERVICE_HOST_BITS} host bits (/${(s.family === 4 ? 32 : 128) - MAX_SERVICE_HOST_BITS} or smaller for IPv${s.family}), as kube-apiserver requires`);
  }
  for (const p of pods) for (const s of services)
    if (cidrsOverlap(p, s)) add([...NET, "serviceSubnet"], `${s.text} overlaps the pod subnet ${p.text}`);
  const mask = spec.networking.nodeCidrMaskSize;
  for (const p of pods) {
    if (p.family !== 4) continue; // nodeCidrMaskSize is the IPv4 node range
    if (mask < p.prefix) add([...NET, "nodeCidrMaskSize"], `/${mask} is larger than the pod subnet ${p.text}: each node's range must fit inside it (use ${p.prefix} or more)`);
    else if (mask - p.prefix > MAX_NODE_CIDR_DIFF)
      add([...NET, "nodeCidrMaskSize"], `/${mask} cuts the pod subnet ${p.text} into more than 2^${MAX_NODE_CIDR_DIFF} node ranges, which kube-controller-manager refuses (use ${p.prefix + MAX_NODE_CIDR_DIFF} or less)`);
  }
  if (spec.networking.cni === "manifest" && !spec.networking.cniManifest)
    add([...NET, "cni"], 'cni "manifest" needs networking.cniManifest.file (the YAML manifest of your network add-on)');
  if (spec.networking.cni !== "manifest" && spec.networking.cniManifest)
    add([...NET, "cniManifest"], `cniManifest is only used with cni "manifest" (cni is "${spec.networking.cni}")`);
  if (!isDNSName(spec.networking.dnsDomain)) add([...NET, "dnsDomain"], `${JSON.stringify(spec.networking.dnsDomain)} is not a DNS name (lowercase labels of letters, digits and '-', e.g. cluster.local)`);

  /** An IP must not fall inside the pod or service subnet. */
  const outsideClusterNets = (ip: string, path: PathSegment[], what: string) => {
    for (const p of pods) if (cidrContains(p, ip)) add(path, `${what} ${ip} is inside the pod subnet ${p.text}`);
    for (const s of services) if (cidrContains(s, ip)) add(path, `${what} ${ip} is inside the service subnet ${s.text}`);
  };

  // --- hosts ------------------------------------------------------------------------------
  const names = new Map<string, number>();
  const endpoints = new Map<string, number>();
  const internals = new Map<string, number>();
  spec.hosts.forEach((h, i) => {
    const at = (...p: PathSegment[]) => ["spec", "hosts", i, ...p];
    const first = names.get(h.name);
    if (first !== undefined) add(at("name"), `duplicate host name "${h.name}" (also spec.hosts[${first}])`);
    else names.set(h.name, i);

    const addrIP = parseIP(h.address);
    if (!addrIP && !isDNSName(h.address.toLowerCase())) add(at("address"), `${JSON.stringify(h.address)} is neither an IP address nor a DNS name`);
    // Several hosts may share an address when their SSH ports differ (sshd on loopback ports).
    const port = h.ssh?.port ?? spec.ssh.port;
    const key = `${addrIP ? canonicalIP(h.address) : h.address.toLowerCase()}|${port}`;
    const firstAddr = endpoints.get(key);
    if (h.connection === "local") {
      // Reached without SSH: its address and port are not a connection endpoint.
    } else if (firstAddr !== undefined) add(at("address"), `duplicate address ${h.address} (port ${port}), also spec.hosts[${firstAddr}]`);
    else endpoints.set(key, i);

    if (h.internalAddress !== undefined) {
      if (!parseIP(h.internalAddress)) add(at("internalAddress"), `${JSON.stringify(h.internalAddress)} is not an IP address (the node's IP in the cluster network)`);
      else {
        const k = canonicalIP(h.internalAddress);
        const f = internals.get(k);
        if (f !== undefined) add(at("internalAddress"), `duplicate internal address ${h.internalAddress}, also spec.hosts[${f}]`);
        else internals.set(k, i);
        outsideClusterNets(h.internalAddress, at("internalAddress"), "host address");
      }
    }
    if (addrIP) outsideClusterNets(h.address, at("address"), "host address");
  });
  spec.hosts.forEach((h, i) => {
    for (const [k, v] of Object.entries(h.labels ?? {})) {
      const keyWhy = labelKeyProblem(k);
      if (keyWhy) problems.push({ path: ["spec", "hosts", i, "labels", k], message: keyWhy, atKey: true });
      const valueWhy = labelValueProblem(v);
      if (valueWhy) add(["spec", "hosts", i, "labels", k], valueWhy);
    }
    if (h.ssh?.bastion !== undefined) {
      const why = bastionProblem(h.ssh.bastion);
      if (why) add(["spec", "hosts", i, "ssh", "bastion"], why);
    }
  });
  if (spec.ssh.bastion !== undefined) {
    const why = bastionProblem(spec.ssh.bastion);
    if (why) add(["spec", "ssh", "bastion"], why);
  }
  // These name environment variables; a value that is not a name may be the secret itself, so it
  // is never repeated in the message.
  for (const f of ["passphraseEnv", "passwordEnv"] as const) {
    const v = spec.ssh[f];
    if (v !== undefined && !/^[A-Za-z_][A-Za-z0-9_]*$/.test(v))
      add(["spec", "ssh", f], "must be the NAME of an environment variable (letters, digits and _), not the secret itself; the value is not shown");
  }
  for (const [component, args] of Object.entries(spec.controlPlane.extraArgs)) {
    for (const flag of Object.keys(args)) {
      const path = ["spec", "controlPlane", "extraArgs", component, flag];
      if (flag.startsWith("-")) problems.push({ path, atKey: true, message: `write the flag without leading dashes ("${flag.replace(/^-+/, "")}")` });
      else if (!/^[a-z0-9][a-z0-9.-]*$/i.test(flag)) problems.push({ path, atKey: true, message: `"${flag}" is not a flag name` });
    }
  }
  // --- images and registry mirrors ----------------------------------------------------------
  if (spec.images.repository !== undefined) {
    const why = repositoryProblem(spec.images.repository);
    if (why) add(["spec", "images", "repository"], why);
  }
  for (const [registry, urls] of Object.entries(spec.registryMirrors)) {
    const why = mirroredRegistryProblem(registry);
    if (why) problems.push({ path: ["spec", "registryMirrors", registry], atKey: true, message: why });
    urls.forEach((u, i) => {
      const bad = mirrorURLProblem(u);
      if (bad) add(["spec", "registryMirrors", registry, i], bad);
    });
  }
  if (!spec.hosts.some((h) => h.roles.includes("control-plane")))
    add(["spec", "hosts"], "no host has the control-plane role; at least one must");
  // An etcd host runs etcd and nothing else (no kubelet): etcd on a control plane is the stacked
  // topology, which needs no role; etcd next to a worker's pods is not a layout kubeadm knows.
  spec.hosts.forEach((h, i) => {
    if (!h.roles.includes("etcd")) return;
    const j = h.roles.indexOf("etcd");
    if (h.roles.includes("control-plane"))
      add(["spec", "hosts", i, "roles", j], `host "${h.name}" has roles control-plane and etcd: etcd on a control plane is stacked etcd (the default, no etcd role needed); an etcd host runs etcd only`);
    else if (h.roles.includes("worker"))
      add(["spec", "hosts", i, "roles", j], `host "${h.name}" has roles worker and etcd: an etcd host runs etcd only (no kubelet, no pods); give it the etcd role alone`);
  });

  // --- control plane endpoint ---------------------------------------------------------------
  if (spec.controlPlaneEndpoint !== undefined) {
    const ep = parseHostPort(spec.controlPlaneEndpoint);
    if ("error" in ep) add(["spec", "controlPlaneEndpoint"], `${JSON.stringify(spec.controlPlaneEndpoint)} ${ep.error}`);
    else if (ep.kind === "ip") outsideClusterNets(ep.host, ["spec", "controlPlaneEndpoint"], "endpoint address");
  }
  spec.controlPlane.certSANs.forEach((san, i) => {
    if (!parseIP(san) && !isSANDNSName(san))
      add(["spec", "controlPlane", "certSANs", i], `${JSON.stringify(san)} is neither an IP address nor a DNS name`);
  });

  // --- HA ---------------------------------------------------------------------------------
  const ha = spec.ha;
  if (ha.virtualIP !== undefined) {
    if (!parseIP(ha.virtualIP)) add(["spec", "ha", "virtualIP"], `${JSON.stringify(ha.virtualIP)} is not an IP address`);
    else {
      outsideClusterNets(ha.virtualIP, ["spec", "ha", "virtualIP"], "virtual IP");
      const vip = canonicalIP(ha.virtualIP);
      spec.hosts.forEach((h, i) => {
        for (const a of [h.address, h.internalAddress]) {
          if (a !== undefined && parseIP(a) && canonicalIP(a) === vip)
            add(["spec", "ha", "virtualIP"], `virtual IP ${ha.virtualIP} is the address of host "${h.name}" (spec.hosts[${i}]); it must be an unused address`);
        }
      });
    }
  }
  if (ha.enabled) {
    if (ha.virtualIP === undefined) add(["spec", "ha"], "ha.enabled needs virtualIP (the address keepalived moves between control planes)");
    if (ha.haproxyPort === 6443)
      add(["spec", "ha", "haproxyPort"], "haproxy cannot listen on 6443: kube-apiserver listens there on every control plane; use another port (8443 is the usual one)");
    const cps = spec.hosts.filter((h) => h.roles.includes("control-plane")).length;
    if (cps < 2) add(["spec", "ha", "enabled"], `HA needs at least 2 control-plane hosts (3 for etcd to survive a failure); found ${cps}`);
  }
  if (ha.authentication && !(Number.isInteger(ha.advertInterval) && ha.advertInterval >= 1))
    add(
      ["spec", "ha", "advertInterval"],
      `with authentication the advertisement interval must be a whole number of seconds, at least 1 (got ${ha.advertInterval}): ` +
        "VRRP v3 has no authentication, so keepalived speaks VRRP v2, whose adverts carry whole seconds; failover then takes about 3 adverts plus a skew (about 3-4 s with 1) instead of about 1 s",
    );
  return problems;
}

function canonicalIP(s: string): string {
  const ip = parseIP(s)!;
  return `${ip.family}:${ip.value.toString(16)}`;
}

/** Parses a subnet field: one CIDR, or two of different families separated by a comma (dual stack). */
function subnetList(text: string, path: PathSegment[], what: string, add: (p: PathSegment[], m: string) => void): CIDR[] {
  const items = splitList(text);
  if (items.length === 0) {
    add(path, `the ${what} must not be empty`);
    return [];
  }
  const out: CIDR[] = [];
  for (const item of items) {
    const c = parseCIDR(item);
    if (!c) {
      add(path, `${JSON.stringify(item)} is not a valid CIDR (like 10.244.0.0/16 or fd00:10:244::/56)`);
      continue;
    }
    if (c.hostBitsSet) {
      add(path, `${item} has host bits set; did you mean ${canonicalCIDR(c)}?`);
      continue;
    }
    out.push(c);
  }
  if (items.length > 2 || (out.length === 2 && out[0].family === out[1].family))
    add(path, `at most one IPv4 and one IPv6 ${what} (dual stack), separated by a comma`);
  return out;
}

/** A Kubernetes label key: [prefix/]name, prefix a DNS subdomain, name up to 63 of [A-Za-z0-9._-]. */
function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && !isDNSName(prefix)) return `label key prefix "${prefix}" is not a DNS name`;
  if (!/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(name))
    return `label key "${key}" is not valid (a name of at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric, with an optional DNS prefix and '/')`;
  return undefined;
}

function labelValueProblem(value: string): string | undefined {
  if (value === "" || /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(value)) return undefined;
  return `label value ${JSON.stringify(value)} is not valid (at most 63 letters, digits, '-', '_' or '.', starting and ending alphanumeric)`;
}

/** "host", "user@host", "host:port", "user@[fd00::1]:22". */
function bastionProblem(s: string): string | undefined {
  const m = /^(?:([^@\s]+)@)?(\[[^\]]+\]|[^:@\s]+)(?::(\d+))?$/.exec(s);
  const bad = `${JSON.stringify(s)} is not a jump host; write host, user@host or user@host:port`;
  if (!m) return bad;
  const host = m[2].startsWith("[") ? m[2].slice(1, -1) : m[2];
  if (m[2].startsWith("[") ? !parseIP(host) : !parseIP(host) && !isDNSName(host.toLowerCase())) return bad;
  if (m[3] !== undefined && (Number(m[3]) < 1 || Number(m[3]) > 65535)) return `${JSON.stringify(s)}: port ${m[3]} is not from 1 to 65535`;
  return undefined;
}
