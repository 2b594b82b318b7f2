// Small IPv4 helpers for the addresses bootstrap and addons need (the kube-dns Service address).
export function ipv4ToInt(ip: string): number {
  const parts = ip.split(".");
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) throw new Error(`not an IPv4 address: ${ip}`);
  return parts.reduce((acc, p) => acc * 256 + Number(p), 0);
}

export function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => Math.floor(n / 2 ** s) % 256).join(".");
}

/** The n-th address of an IPv4 CIDR (n = 1 is the first after the network address). */
export function nthAddress(cidr: string, n: number): string {
  const [ip, bitsText] = cidr.split("/");
  const bits = Number(bitsText);
  if (!Number.isInteger(bits) || bits < 0 || bits > 32) throw new Error(`not an IPv4 CIDR: ${cidr}`);
  const size = 2 ** (32 - bits);
  const base = ipv4ToInt(ip) - (ipv4ToInt(ip) % size);
  if (n < 0 || n >= size) throw new Error(`${cidr} has no address number ${n}`);
  return intToIpv4(base + n);
}

/** The address of the kube-dns Service: the tenth of the service subnet, as kubeadm picks it. */
export function dnsServiceIP(serviceSubnet: string): string {
  return nthAddress(serviceSubnet.split(",")[0].trim(), 10);
}

/** The address of the `kubernetes` Service: the first of the service subnet. */
export function apiServiceIP(serviceSubnet: string): string {
  return nthAddress(serviceSubnet.split(",")[0].trim(), 1);
}
