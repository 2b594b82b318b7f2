// The images a cluster needs, as data: their names as kubeadm spells them, what goes into each,
// and which nodes need which. Pure: no Docker here (build.ts builds, tasks/images.ts imports).
import { FLANNEL_IMAGE_REPOSITORY, IMAGE_REGISTRY, LOCAL_PATH_PROVISIONER_IMAGE_REPOSITORY, METRICS_SERVER_IMAGE_REPOSITORY, PAUSE_VERSION } from "../constants.js";

export interface BundleVersions {
  kubernetesVersion: string;
  etcdVersion: string;
  corednsVersion: string;
  /** Absent in bundles built before flannel was part of them. */
  flannelVersion?: string;
  /** Absent in bundles built before the storage and metrics-server add-ons were part of them. */
  localPathProvisionerVersion?: string;
  metricsServerVersion?: string;
}

export type ImageName =
  | "pause"
  | "etcd"
  | "kube-apiserver"
  | "kube-controller-manager"
  | "kube-scheduler"
  | "kube-proxy"
  | "coredns"
  | "flannel"
  | "local-path-provisioner"
  | "metrics-server";

export interface ImageRecipe {
  name: ImageName;
  /** The reference kubeadm and the manifests use, e.g. registry.k8s.io/kube-apiserver:v1.37.2. */
  ref: string;
  /** scratch: static binaries only; debian: on a Debian root (kube-proxy needs iptables); pause: compiled here. */
  base: "scratch" | "debian" | "pause";
  /** Files from the bundle's bin/ copied to /usr/local/bin. */
  binaries: string[];
  entrypoint: string[];
}

/** kubeadm tags etcd as "<version without v>-0". */
export function etcdImageTag(etcdVersion: string): string {
  return `${etcdVersion.replace(/^v/, "")}-0`;
}

/**
 * An image's reference. Without `repository`: the name upstream publishes it under (the bundle's
 * tars carry these). With `repository` (kubeadm's imageRepository, `spec.images.repository`):
 * every image is `<repository>/<image>:<tag>`, one level below it, as kubeadm names the
 * control-plane images, pause and CoreDNS under a custom repository (CoreDNS loses its
 * `coredns/` directory there) and as the mirrors people run hold them.
 */
export function imageRef(name: ImageName, v: BundleVersions, repository?: string): string {
  if (repository) return refUnderRepository(repository, name, imageRef(name, v));
  switch (name) {
    case "pause":
      return `${IMAGE_REGISTRY}/pause:${PAUSE_VERSION}`;
    case "etcd":
      return `${IMAGE_REGISTRY}/etcd:${etcdImageTag(v.etcdVersion)}`;
    case "coredns":
      return `${IMAGE_REGISTRY}/coredns/coredns:${v.corednsVersion}`;
    case "flannel":
      return `${FLANNEL_IMAGE_REPOSITORY}:${v.flannelVersion}`;
    case "local-path-provisioner":
      return `${LOCAL_PATH_PROVISIONER_IMAGE_REPOSITORY}:${v.localPathProvisionerVersion}`;
    case "metrics-server":
      return `${METRICS_SERVER_IMAGE_REPOSITORY}:${v.metricsServerVersion}`;
    default:
      return `${IMAGE_REGISTRY}/${name}:${v.kubernetesVersion}`;
  }
}

/** An image known by its upstream reference, named under `repository` instead (the same tag). */
export function refUnderRepository(repository: string, name: ImageName, ref: string): string {
  return `${repository}/${name}:${ref.slice(ref.lastIndexOf(":") + 1)}`;
}

/** The cluster's own name for an image: under spec.images.repository when set, else upstream's. */
export function clusterImageRef(cluster: { spec: { images?: { repository?: string | undefined } | undefined } }, name: ImageName, v: BundleVersions): string {
  return imageRef(name, v, cluster.spec.images?.repository);
}

export function imageCatalog(v: BundleVersions): ImageRecipe[] {
  const r = (name: ImageName, base: ImageRecipe["base"], binaries: string[], entrypoint: string[]): ImageRecipe => ({
    name,
    ref: imageRef(name, v),
    base,
    binaries,
    entrypoint,
  });
  return [
    r("pause", "pause", [], ["/pause"]),
    r("etcd", "scratch", ["etcd", "etcdctl"], []),
    r("kube-apiserver", "scratch", ["kube-apiserver"], []),
    r("kube-controller-manager", "scratch", ["kube-controller-manager"], []),
    r("kube-scheduler", "scratch", ["kube-scheduler"], []),
    r("kube-proxy", "debian", ["kube-proxy"], []),
    r("coredns", "scratch", ["coredns"], ["/usr/local/bin/coredns"]),
    // flanneld runs iptables (its masquerade rules): a Debian base, as kube-proxy's.
    ...(v.flannelVersion ? [r("flannel", "debian", ["flanneld"], ["/usr/local/bin/flanneld"])] : []),
    // The storage add-on's helper pods run this image too (sh, mkdir and rm of one volume's
    // directory): a Debian base, whose layers every node already holds for kube-proxy.
    ...(v.localPathProvisionerVersion ? [r("local-path-provisioner", "debian", ["local-path-provisioner"], ["/usr/local/bin/local-path-provisioner"])] : []),
    ...(v.metricsServerVersion ? [r("metrics-server", "scratch", ["metrics-server"], ["/usr/local/bin/metrics-server"])] : []),
  ];
}

/** The images a node needs: every node runs pods (pause, kube-proxy, CoreDNS and the enabled
 * add-ons may land on it; a storage volume's helper pod runs on the node of its volume); control
 * planes in static-pods mode also run etcd and the control plane from images. */
export function imagesForNode(opts: {
  controlPlane: boolean;
  mode: "static-pods" | "systemd";
  flannel?: boolean;
  storage?: boolean;
  metricsServer?: boolean;
}): ImageName[] {
  const names: ImageName[] = ["pause", "kube-proxy", "coredns"];
  if (opts.flannel) names.push("flannel");
  if (opts.storage) names.push("local-path-provisioner");
  if (opts.metricsServer) names.push("metrics-server");
  if (opts.controlPlane && opts.mode === "static-pods") {
    names.push("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler");
  }
  return names;
}
