// The one typed model of a cluster file. The TypeScript types are inferred from this schema;
// there is no hand-written duplicate. Every object is strict: unknown fields are errors.
// Defaults live here too (zod .default), so `config print-defaults` and parsing agree.
import { z } from "zod";
import { API_VERSION, DEFAULT_KUBERNETES_VERSION, KIND_CLUSTER, DNS1123_LABEL } from "../constants.js";

/** etcd: a host of an external etcd cluster (kubeadm's "external etcd" topology); it runs etcd only. */
export const ROLES = ["control-plane", "worker", "etcd"] as const;
export type Role = (typeof ROLES)[number];

const dns1123Label = z
  .string()
  .regex(DNS1123_LABEL, "must be a DNS-1123 label (lowercase letters, digits and '-', at most 63, starting and ending alphanumeric)");

const port = z.number().int().min(1).max(65535);

const stringMap = z.record(z.string(), z.string());

export const sshSchema = z.strictObject({
  user: z.string().min(1).default("root"),
  port: port.default(22),
  /** Private key file; "~" expands to the home directory. */
  identityFile: z.string().optional(),
  /** Try the SSH agent (SSH_AUTH_SOCK) too. */
  useAgent: z.boolean().default(true),
  knownHostsFile: z.string().default("~/.ssh/known_hosts"),
  /** Environment variable that holds the key's passphrase (never the passphrase itself). */
  passphraseEnv: z.string().optional(),
  /** Environment variable that holds a password (never the password itself). */
  passwordEnv: z.string().optional(),
  /** Jump host, as "user@host:port" or "host". */
  bastion: z.string().optional(),
});

export const hostSshSchema = z.strictObject({
  user: z.string().min(1).optional(),
  port: port.optional(),
  identityFile: z.string().optional(),
  bastion: z.string().optional(),
});

export const hostSchema = z.strictObject({
  name: dns1123Label,
  /** Address kubeprov connects to over SSH, and the node's IP unless internalAddress is set. */
  address: z.string().min(1),
  /** The node's address inside the cluster network (default: address). */
  internalAddress: z.string().optional(),
  roles: z.array(z.enum(ROLES)).min(1),
  ssh: hostSshSchema.optional(),
  /** ssh (default) or local: the machine kubeprov runs on, reached without SSH (execa). */
  connection: z.enum(["ssh", "local"]).default("ssh"),
  /** Overrides CRI socket detection on this host. */
  criSocket: z.string().optional(),
  labels: stringMap.optional(),
});

export const componentArgsSchema = z.strictObject({
  etcd: stringMap.default({}),
  apiserver: stringMap.default({}),
  controllerManager: stringMap.default({}),
  scheduler: stringMap.default({}),
  kubelet: stringMap.default({}),
  kubeProxy: stringMap.default({}),
});

export const clusterSpecSchema = z.strictObject({
  kubernetesVersion: z.string().regex(/^v\d+\.\d+\.\d+$/, "must look like v1.37.2").default(DEFAULT_KUBERNETES_VERSION),
  /** host:port clients and nodes use to reach the API server (a VIP, a load balancer or the first control plane). */
  controlPlaneEndpoint: z.string().optional(),
  networking: z
    .strictObject({
      podSubnet: z.string().default("10.244.0.0/16"),
      serviceSubnet: z.string().default("10.96.0.0/12"),
      dnsDomain: z.string().default("cluster.local"),
      /** Size of each node's pod CIDR. */
      nodeCidrMaskSize: z.number().int().min(16).max(28).default(24),
      /** The network add-on: flannel (routes between nodes), bridge (one node only), none (bring your own), manifest (cniManifest). */
      cni: z.enum(["flannel", "bridge", "none", "manifest"]).default("flannel"),
      /** With cni manifest: a YAML file of Kubernetes objects kubeprov applies, and the images it needs loaded into every node. */
      cniManifest: z
        .strictObject({
          /** Path of the manifest; relative to the cluster file's directory. */
          file: z.string().min(1),
          /** Images of the local Docker engine, or `docker save` archives (.tar), loaded into every node's containerd. */
          images: z.array(z.string().min(1)).default([]),
        })
        .optional(),
      /** flannel's backend: host-gw when every node shares one L2 network, vxlan otherwise. */
      flannelBackend: z.enum(["host-gw", "vxlan"]).default("host-gw"),
    })
    .prefault({}),
  controlPlane: z
    .strictObject({
      /** static-pods: kubelet runs etcd and the control plane from /etc/kubernetes/manifests (kubeadm's way); systemd: units run the binaries. */
      mode: z.enum(["static-pods", "systemd"]).default("static-pods"),
      /** Extra SANs for the API server certificate. */
      certSANs: z.array(z.string()).default([]),
      extraArgs: componentArgsSchema.prefault({}),
    })
    .prefault({}),
  ha: z
    .strictObject({
      /** keepalived VIP + haproxy on the control planes. */
      enabled: z.boolean().default(false),
      virtualIP: z.string().optional(),
      interface: z.string().default("eth0"),
      haproxyPort: port.default(8443),
      virtualRouterId: z.number().int().min(1).max(255).default(51),
      /** VRRP advertisement interval in seconds (VRRP v3: 0.01 to 40.95, in steps of 0.01; with authentication, VRRP v2: whole seconds 1-40). */
      advertInterval: z.number().min(0.01).max(40.95).default(0.2),
      /**
       * VRRP authentication between the control planes' keepalived. VRRP v3 has none, so with this
       * set keepalived speaks VRRP v2, whose advertisement interval is whole seconds.
       */
      authentication: z
        .strictObject({
          /** PASS: a shared password in every advertisement (keepalived's suggested type; its IPsec AH type is not offered). */
          type: z.enum(["PASS"]).default("PASS"),
          /** File on the machine kubeprov runs on holding the password (1-8 characters), mode 0600 or stricter; relative to the cluster file. */
          passwordFile: z.string().min(1),
        })
        .optional(),
    })
    .prefault({}),
  containerRuntime: z
    .strictObject({
      /** Cgroup driver for containerd and the kubelet: systemd on real hosts, cgroupfs in node containers. */
      cgroupDriver: z.enum(["systemd", "cgroupfs"]).default("systemd"),
      /** CRI socket for every host (a host's criSocket wins). Default: detected. */
      criSocket: z.string().optional(),
    })
    .prefault({}),
  artifacts: z
    .strictObject({
      /** dir: a local directory holding bin/ (the air-gapped bundle); download: official release URLs checked against sha256. */
      source: z.enum(["dir", "download"]).default("dir"),
      /** For source dir. Default: ~/.cache/kubeprov/bundle/<kubernetesVersion>. */
      path: z.string().optional(),
      /** For source download. */
      mirror: z.string().default("https://dl.k8s.io"),
    })
    .prefault({}),
  /** Where the cluster's images are named (kubeadm's imageRepository). */
  images: z
    .strictObject({
      /**
       * A registry and path, e.g. registry.example.com:5000/k8s: the control-plane images, pause,
       * kube-proxy, CoreDNS and the add-ons' images are named <repository>/<image>:<tag>, and the
       * bundle's images are tagged so on the nodes. Default: each image's upstream name.
       */
      repository: z.string().min(1).optional(),
    })
    .prefault({}),
  /**
   * Mirrors per registry, containerd's hosts.toml: {"docker.io": ["https://mirror.example.com"]}.
   * A pull from the registry tries its mirrors in order, then the registry itself.
   */
  registryMirrors: z.record(z.string(), z.array(z.string()).min(1)).default({}),
  pki: z
    .strictObject({
      keyAlgorithm: z.enum(["rsa"]).default("rsa"),
      keySize: z.union([z.literal(2048), z.literal(3072), z.literal(4096)]).default(2048),
      certificateValidityDays: z.number().int().min(1).max(3650).default(365),
      caValidityDays: z.number().int().min(1).max(36500).default(3650),
      /** Leaves expiring within this many days are re-issued by apply / certs renew. */
      renewBeforeDays: z.number().int().min(0).max(3650).default(30),
    })
    .prefault({}),
  /**
   * Optional add-ons, as minikube's: storage (a default StorageClass "standard" with a dynamic
   * provisioner of host-path volumes) is on by default, metrics-server (`kubectl top`) off.
   * The network add-on, kube-proxy and CoreDNS are not optional and are not listed here.
   */
  addons: z
    .strictObject({
      storage: z
        .strictObject({
          enabled: z.boolean().default(true),
          /** Directory on each node under which the provisioner makes one directory per volume. */
          hostPath: z.string().regex(/^(?!.*\/\.\.?(\/|$))(\/[A-Za-z0-9._-]+)+$/, "must be an absolute path such as /opt/local-path-provisioner (letters, digits, '.', '_', '-'; not /, no . or .. parts)").default("/opt/local-path-provisioner"),
        })
        .prefault({}),
      metricsServer: z
        .strictObject({
          enabled: z.boolean().default(false),
        })
        .prefault({}),
    })
    .prefault({}),
  /** What preflight --fix does about an active firewall. */
  firewall: z.enum(["open-ports", "disable"]).default("open-ports"),
  ssh: sshSchema.prefault({}),
  hosts: z.array(hostSchema).min(1),
});

export const clusterSchema = z.strictObject({
  apiVersion: z.literal(API_VERSION),
  kind: z.literal(KIND_CLUSTER),
  metadata: z.strictObject({ name: dns1123Label }),
  spec: clusterSpecSchema,
});

export type Cluster = z.infer<typeof clusterSchema>;
export type ClusterSpec = Cluster["spec"];
export type HostSpec = ClusterSpec["hosts"][number];
export type ClusterInput = z.input<typeof clusterSchema>;
