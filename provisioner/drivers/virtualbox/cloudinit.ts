// The cloud-init NoCloud seed of a VM: user-data (root may log in with the cluster's key only; new
// SSH host keys on first boot, printed to the serial console), meta-data (instance-id, hostname)
// and network-config (version 2: DHCP on the NAT adapter, a static address on the host-only one,
// each adapter matched by the MAC address the driver gives it). Pure: values in, text out; the
// image itself is iso9660.ts's.
import { createHash } from "node:crypto";
import { stringify } from "yaml";
import { buildIso } from "./iso9660.js";

/** NoCloud finds its seed by this volume label. */
export const SEED_LABEL = "cidata";
/** Interface names the guest gives the two adapters (network-config `set-name`). */
export const NAT_INTERFACE = "nat0";
export const HOST_ONLY_INTERFACE = "hostonly0";

export interface SeedInput {
  cluster: string;
  node: string;
  /** The cluster's public key line ("ssh-ed25519 AAAA... comment"). */
  publicKey: string;
  /** Static address on the host-only network, and its prefix length. */
  address: string;
  prefixLength: number;
  natMac: string;
  hostOnlyMac: string;
}

/**
 * A MAC address in VirtualBox's own OUI (08:00:27) whose last three bytes come from a hash of
 * cluster, node and adapter, so a node keeps its addresses across `up` runs. Colon form.
 */
export function macAddress(cluster: string, node: string, adapter: number): string {
  const h = createHash("sha256").update(`${cluster}/${node}/nic${adapter}`).digest();
  return ["08", "00", "27", ...[h[0], h[1], h[2]].map((b) => b.toString(16).padStart(2, "0"))].join(":");
}

/** The same MAC as VBoxManage's --macaddressN wants it: 12 hex digits, no separators. */
export function vboxMac(mac: string): string {
  return mac.replace(/:/g, "").toUpperCase();
}

export function userData(i: SeedInput): string {
  const config = {
    hostname: i.node,
    // Root logs in with the cluster's key (the cluster file's ssh.user is root); no passwords.
    disable_root: false,
    ssh_pwauth: false,
    ssh_authorized_keys: [i.publicKey.trim()],
    // A linked clone starts with the base image's host keys, if it has any: new ones per VM.
    ssh_deletekeys: true,
    ssh_genkeytypes: ["ed25519", "ecdsa", "rsa"],
  };
  return `#cloud-config\n${stringify(config, { lineWidth: 0 })}`;
}

export function metaData(i: SeedInput): string {
  const id = createHash("sha256").update(`${i.cluster}/${i.node}/${i.hostOnlyMac}`).digest("hex").slice(0, 12);
  return stringify({ "instance-id": `kubeprov-${i.node}-${id}`, "local-hostname": i.node });
}

export function networkConfig(i: SeedInput): string {
  return stringify({
    version: 2,
    ethernets: {
      [NAT_INTERFACE]: { match: { macaddress: i.natMac }, "set-name": NAT_INTERFACE, dhcp4: true },
      [HOST_ONLY_INTERFACE]: { match: { macaddress: i.hostOnlyMac }, "set-name": HOST_ONLY_INTERFACE, dhcp4: false, addresses: [`${i.address}/${i.prefixLength}`] },
    },
  });
}

/** The seed image: an ISO 9660 volume labelled cidata holding the three files. */
export function seedImage(i: SeedInput): Buffer {
  return buildIso(
    [
      { name: "meta-data", data: Buffer.from(metaData(i)) },
      { name: "network-config", data: Buffer.from(networkConfig(i)) },
      { name: "user-data", data: Buffer.from(userData(i)) },
    ],
    { volumeId: SEED_LABEL },
  );
}

const KEYS_BEGIN = "-----BEGIN SSH HOST KEY KEYS-----";
const KEYS_END = "-----END SSH HOST KEY KEYS-----";
const KEY_LINE = /(ssh-ed25519|ecdsa-sha2-nistp(?:256|384|521)|ssh-rsa)\s+([A-Za-z0-9+/]+={0,2})(?:\s|$)/;

/**
 * The SSH host public keys cloud-init printed to the serial console ("type base64" each), from
 * the last complete BEGIN/END block in the log (the latest boot that printed them); undefined
 * while no complete block is there. Lines may carry carriage returns or a console prefix.
 */
export function hostKeysFromConsole(log: string): string[] | undefined {
  const lines = log.split(/\r?\n|\r/);
  let result: string[] | undefined;
  let current: string[] | undefined;
  for (const line of lines) {
    if (line.includes(KEYS_BEGIN)) current = [];
    else if (line.includes(KEYS_END)) {
      if (current?.length) result = current;
      current = undefined;
    } else if (current) {
      const m = KEY_LINE.exec(line);
      if (m) current.push(`${m[1]} ${m[2]}`);
    }
  }
  return result;
}
