// Every well-known name, path, port and version lives here, as kubeadm's constants.go does.

export const DEFAULT_KUBERNETES_VERSION = "v1.37.2";
export const ETCD_VERSION = "v3.7.0";
export const COREDNS_VERSION = "v1.14.6";
export const CRICTL_VERSION = "v1.37.0";
export const FLANNEL_VERSION = "v0.28.10";
/** The storage add-on's dynamic provisioner (github.com/rancher/local-path-provisioner). */
export const LOCAL_PATH_PROVISIONER_VERSION = "v0.0.30";
/** The metrics-server add-on (sigs.k8s.io/metrics-server). */
export const METRICS_SERVER_VERSION = "v0.8.0";
/** Where upstream publishes flannel's image; kubeprov builds its own under the same name. */
export const FLANNEL_IMAGE_REPOSITORY = "ghcr.io/flannel-io/flannel";
/** Where upstream publishes these add-ons' images; kubeprov builds its own under the same names. */
export const LOCAL_PATH_PROVISIONER_IMAGE_REPOSITORY = "docker.io/rancher/local-path-provisioner";
export const METRICS_SERVER_IMAGE_REPOSITORY = "registry.k8s.io/metrics-server/metrics-server";
/** The provisioner name of the storage add-on's StorageClass (local-path-provisioner's own default). */
export const LOCAL_PATH_PROVISIONER_NAME = "rancher.io/local-path";
/** The StorageClass the storage add-on makes the cluster's default (minikube's name). */
export const DEFAULT_STORAGE_CLASS = "standard";

export const API_VERSION = "kubeprov/v1alpha1";
export const KIND_CLUSTER = "Cluster";

// Host paths (kubeadm's layout).
export const KUBERNETES_DIR = "/etc/kubernetes";
export const PKI_DIR = "/etc/kubernetes/pki";
export const MANIFESTS_DIR = "/etc/kubernetes/manifests";
export const KUBELET_DIR = "/var/lib/kubelet";
export const KUBELET_CONFIG = "/var/lib/kubelet/config.yaml";
/** The kubelet's kubeconfig (after TLS bootstrap its client certificate is a file the kubelet rotates). */
export const KUBELET_KUBECONFIG = `${KUBERNETES_DIR}/kubelet.conf`;
export const ETCD_DATA_DIR = "/var/lib/etcd";
/** Root-only (0700) directory on a control plane for etcd snapshots in transit (save and restore). */
export const ETCD_SNAPSHOT_DIR = "/var/lib/kubeprov/etcd-snapshots";
export const BIN_DIR = "/usr/local/bin";
export const CNI_BIN_DIR = "/opt/cni/bin";
export const CNI_CONF_DIR = "/etc/cni/net.d";
/**
 * Where a node container's kubelet puts its cgroups in the host's hierarchies (node containers share
 * the host's cgroup namespace): KUBELET_CGROUP_PARENT/<cluster>/<node>, one root per node.
 */
export const KUBELET_CGROUP_PARENT = "kubeprov";

// Ports.
export const PORT_APISERVER = 6443;
export const PORT_ETCD_CLIENT = 2379;
export const PORT_ETCD_PEER = 2380;
export const PORT_KUBELET = 10250;
export const PORT_CONTROLLER_MANAGER = 10257;
export const PORT_SCHEDULER = 10259;
export const PORT_HAPROXY = 8443;
export const NODEPORT_RANGE = "30000-32767";

// Labels and names.
export const LABEL_CONTROL_PLANE = "node-role.kubernetes.io/control-plane";
export const TAINT_CONTROL_PLANE = "node-role.kubernetes.io/control-plane";

// Driver clusters (docker): everything carries this label so cleanup finds it.
export const DOCKER_LABEL_CLUSTER = "io.kubeprov.cluster";
export const DOCKER_LABEL_ROLE = "io.kubeprov.role";
export const DOCKER_LABEL_NODE = "io.kubeprov.node";
/** Node networks are carved out of this range, never outside. */
export const DOCKER_NETWORK_POOL = "10.213.0.0/16";

// Timeouts.
export const SSH_CONNECT_TIMEOUT_MS = 20_000;
export const LOCK_STALE_MS = 30_000;
export const LOCK_TOUCH_MS = 10_000;
export const LOCK_FILE = "/var/lock/kubeprov.lock";
export const PAUSE_VERSION = "3.10.2";
/** Local image names for the images kubeprov builds from the bundle (no registry is needed). */
export const IMAGE_REGISTRY = "registry.k8s.io";
/** Attempts for SSH connection set-up (refused, reset, timed out), all within SSH_CONNECT_TIMEOUT_MS. */
export const SSH_CONNECT_ATTEMPTS = 4;
/** Concurrent exec channels on one SSH connection (OpenSSH's MaxSessions defaults to 10). */
export const SSH_MAX_CHANNELS = 8;
/** Hosts connected to at once. */
export const SSH_CONNECT_CONCURRENCY = 32;
/**
 * Written on a host once kubeprov has initialised or joined it (content: the cluster's name).
 * Preflight skips the "files would be overwritten" and "port in use" checks on a host whose marker
 * names the same cluster, so a re-run passes.
 */
export const CLUSTER_MARKER_FILE = "/etc/kubernetes/kubeprov-cluster";
/** Where CNI plugins are looked for: Debian's containernetworking-plugins, upstream, RHEL family. */
export const CNI_BIN_DIRS = ["/usr/lib/cni", "/opt/cni/bin", "/usr/libexec/cni"] as const;
export const CONTAINERD_CONFIG = "/etc/containerd/config.toml";
/** containerd's registry host directory (config_path): one <registry>/hosts.toml per registry, read at each pull. */
export const CONTAINERD_CERTS_DIR = "/etc/containerd/certs.d";
/** The China mirror minikube's --image-mirror-country cn picks (its constants.AliyunMirror). */
export const IMAGE_MIRROR_CN = "registry.cn-hangzhou.aliyuncs.com/google_containers";
export const CONTAINERD_SOCKET = "/run/containerd/containerd.sock";
export const CRICTL_CONFIG = "/etc/crictl.yaml";

/** A DNS-1123 label (node, cluster and host names): lowercase letters, digits and '-', at most 63, alphanumeric at both ends. */
export const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
