// The text of `kubeprov config print-defaults`: a complete cluster file with every field and a
// comment on each. The defaults themselves live in schema.ts; test/unit/spec.test.ts checks that
// every value printed here that the example does not set on purpose equals the schema default.
// Addresses are examples (192.168.99.0/24): nothing ever connects to them.
import { API_VERSION, DEFAULT_KUBERNETES_VERSION, KIND_CLUSTER } from "../constants.js";

/**
 * The values the example sets on purpose (not defaults): the hosts, the endpoint, HA, one extra
 * SAN and the SSH key. Everything else in the printed file is the default.
 */
export const EXAMPLE_SETTINGS = {
  apiVersion: API_VERSION,
  kind: KIND_CLUSTER,
  metadata: { name: "demo" },
  spec: {
    controlPlaneEndpoint: "192.168.99.100:8443",
    controlPlane: { certSANs: ["api.demo.example.internal"] },
    ha: { enabled: true, virtualIP: "192.168.99.100" },
    ssh: { identityFile: "~/.ssh/id_ed25519" },
    hosts: [
      { name: "master1", address: "192.168.99.201", roles: ["control-plane"], ssh: { port: 2222 } },
      { name: "master2", address: "192.168.99.202", roles: ["control-plane"] },
      { name: "master3", address: "192.168.99.203", roles: ["control-plane"] },
      {
        name: "node1",
        address: "node1.demo.example.internal",
        internalAddress: "192.168.99.211",
        roles: ["worker"],
        labels: { "topology.kubernetes.io/zone": "zone-a" },
      },
      { name: "node2", address: "192.168.99.212", roles: ["worker"], ssh: { user: "admin", identityFile: "~/.ssh/node2_ed25519" } },
    ],
  },
} as const;

export function defaultsText(): string {
  return `# kubeprov cluster file: every field, with its default unless the comment says "example".
# Check it with \`kubeprov config validate -f FILE\`; see the effective values with \`kubeprov config view -f FILE\`.
# The addresses below are examples: replace them with your own machines.
apiVersion: ${API_VERSION}         # format of this file (required)
kind: ${KIND_CLUSTER}                         # always Cluster (required)
metadata:
  name: demo                          # example; the cluster's name, a DNS-1123 label (required)
spec:
  # Kubernetes version to install (vMAJOR.MINOR.PATCH); the binaries come from spec.artifacts.
  kubernetesVersion: ${DEFAULT_KUBERNETES_VERSION}
  # host:port that clients and nodes use to reach the API server: the HA virtual IP with haproxy's
  # port, an external load balancer, or the first control plane's address with 6443.
  # Default: with ha.enabled, ha.virtualIP and ha.haproxyPort; otherwise the first control-plane
  # host's internal address, port 6443 (example value here).
  controlPlaneEndpoint: "192.168.99.100:8443"
  networking:
    podSubnet: 10.244.0.0/16          # pod IPs; "IPv4CIDR,IPv6CIDR" for dual stack
    serviceSubnet: 10.96.0.0/12       # Service IPs (at most /12 for IPv4, /108 for IPv6); .1 is the API, .10 cluster DNS
    dnsDomain: cluster.local          # the cluster's DNS domain (Services are NAME.NAMESPACE.svc.DOMAIN)
    nodeCidrMaskSize: 24              # prefix length of each node's slice of podSubnet (16-28)
    # The network add-on: flannel (pods reach each other across nodes), bridge (pods on one node
    # only), none (apply your own CNI; kubeprov writes no CNI configuration then), or manifest.
    # manifest: apply your own add-on's manifest, with the images it needs loaded into the nodes:
    # cniManifest: {file: weave.yaml, images: [weaveworks/weave-kube:2.8.1]}
    cni: flannel
    flannelBackend: host-gw           # host-gw: all nodes on one L2 network; vxlan: routed networks
  controlPlane:
    # static-pods: the kubelet runs etcd and the control plane from /etc/kubernetes/manifests
    # (kubeadm's layout); systemd: systemd units run the binaries directly.
    mode: static-pods
    # Extra names and IPs for the API server certificate (example; default []). The endpoint, the
    # control planes' addresses and the kubernetes Service names are always included.
    certSANs:
      - api.demo.example.internal
    # Extra command-line flags per component, as flag: "value" without the leading "--"
    # (for example apiserver: {audit-log-maxage: "30"}). Default: none.
    extraArgs:
      etcd: {}
      apiserver: {}
      controllerManager: {}
      scheduler: {}
      kubelet: {}
      kubeProxy: {}
  ha:
    # keepalived holds virtualIP on one control plane and moves it when that one fails; haproxy on
    # every control plane spreads API traffic over all API servers (example: true; default false).
    enabled: true
    virtualIP: 192.168.99.100         # example; an unused address in the hosts' network (required when enabled)
    interface: eth0                   # network interface that carries the virtual IP
    haproxyPort: 8443                 # port haproxy listens on (the API servers keep 6443)
    virtualRouterId: 51               # VRRP router id (1-255), unique per network segment
    advertInterval: 0.2               # VRRP v3 advertisement interval in seconds (0.01-40.95): failover takes about 3.5 of them
    # VRRP authentication (VRRP v2: advertInterval whole seconds, >= 1; failover about 3-4 s). The
    # password (1-8 characters) lives in a chmod-600 file on this machine, never in this file.
    # authentication: {type: PASS, passwordFile: ~/.config/kubeprov/vrrp.pass}
  containerRuntime:
    # systemd on hosts whose init is systemd with its own cgroups (real machines);
    # cgroupfs in node containers (the docker driver). Preflight checks it against the runtime.
    cgroupDriver: systemd
    # CRI socket for every host (a host's criSocket wins). Default: detected on each host.
    # criSocket: unix:///run/containerd/containerd.sock
  artifacts:
    # dir: binaries from a local directory holding bin/ (the air-gapped bundle);
    # download: official release files from mirror, checked against their sha256.
    source: dir
    # For source dir. Default: ~/.cache/kubeprov/bundle/<kubernetesVersion>
    # path: /srv/kubeprov/bundle/${DEFAULT_KUBERNETES_VERSION}
    mirror: https://dl.k8s.io         # for source download
  # Where images come from. repository (kubeadm's imageRepository): every image the cluster runs
  # (control plane, pause, kube-proxy, CoreDNS, add-ons) is named <repository>/<image>:<tag>, and
  # the bundle's images are tagged so on the nodes. Default: each image's upstream name.
  images: {}                          # e.g. {repository: registry.example.com:5000/k8s}
  # Mirrors per registry, written as containerd's /etc/containerd/certs.d/<registry>/hosts.toml on
  # every node (read at each pull: no containerd restart). A pull tries them in order, then the registry.
  registryMirrors: {}                 # e.g. {docker.io: [https://mirror.example.com]}
  pki:
    keyAlgorithm: rsa                 # key type of every private key
    keySize: 2048                     # RSA key size: 2048, 3072 or 4096
    certificateValidityDays: 365      # lifetime of leaf certificates
    caValidityDays: 3650              # lifetime of the CAs
    renewBeforeDays: 30               # apply / certs renew re-issue leaves expiring within this many days
  # Optional add-ons (\`kubeprov addons list|enable|disable\` changes them on a cluster made by \`up\`).
  addons:
    storage:
      # A default StorageClass "standard" whose PersistentVolumeClaims get a directory on the node
      # of their first pod (local-path-provisioner), as minikube's default storage.
      enabled: true
      hostPath: /opt/local-path-provisioner   # where those directories live on each node
    metricsServer:
      enabled: false                  # metrics-server: the resource metrics API behind \`kubectl top\`
  # What \`preflight --fix\` does about an active firewall: open-ports (open what Kubernetes needs)
  # or disable (stop the firewall).
  firewall: open-ports
  # How kubeprov reaches every host over SSH; a host's own ssh: overrides user, port, identityFile, bastion.
  ssh:
    user: root                        # login user; a non-root user needs passwordless sudo
    port: 22
    identityFile: ~/.ssh/id_ed25519   # example; private key file (default: none, the agent's keys only)
    useAgent: true                    # also try the keys of the SSH agent (SSH_AUTH_SOCK)
    knownHostsFile: ~/.ssh/known_hosts  # host keys are checked against this file; unknown hosts are refused
    # Name of an environment variable holding the key's passphrase (never the passphrase itself).
    # passphraseEnv: KUBEPROV_SSH_PASSPHRASE
    # Name of an environment variable holding a password, when there is no key.
    # passwordEnv: KUBEPROV_SSH_PASSWORD
    # Jump host, as user@host:port or host.
    # bastion: jump@bastion.demo.example.internal:22
  # The machines (examples). Every host needs a name (DNS-1123 label), an address and roles.
  hosts:
    - name: master1
      address: 192.168.99.201         # where kubeprov connects over SSH; also the node IP
      roles: [control-plane]          # control-plane and/or worker; or etcd alone (an external etcd host)
      ssh:                            # per-host overrides of spec.ssh: user, port, identityFile, bastion
        port: 2222
    - name: master2
      address: 192.168.99.202
      roles: [control-plane]
    - name: master3
      address: 192.168.99.203
      roles: [control-plane]
    - name: node1
      address: node1.demo.example.internal  # an IP address or a DNS name
      internalAddress: 192.168.99.211 # the node's IP in the cluster network, when it differs from address
      roles: [worker]
      connection: ssh                 # ssh, or local for the machine kubeprov runs on (no SSH)
      # criSocket: unix:///run/containerd/containerd.sock   # this host's CRI socket (default: detected)
      labels:                         # Kubernetes labels for the node (default: none)
        topology.kubernetes.io/zone: zone-a
    - name: node2
      address: 192.168.99.212
      roles: [worker]
      ssh:
        user: admin
        identityFile: ~/.ssh/node2_ed25519
    # Hosts with role etcd (alone) run an external etcd cluster, as systemd units, before the
    # control planes; the control planes then run no etcd. Use an odd number of them.
    # - name: etcd1
    #   address: 192.168.99.221
    #   roles: [etcd]
`;
}
