// The phases of `kubeprov init` and `kubeprov join`, kubeadm's names, as the cluster plan
// (plan/cluster.ts) declares them: init is the first control plane's part of it, join the rest.
import type { Task } from "../engine/task.js";
import { IMAGES_TASK } from "../tasks/images.js";
import { clusterTasks } from "./cluster.js";
import { firstControlPlane } from "./topology.js";

/** What each phase does (for `init phase --help`); phases come from the tasks themselves. */
export const PHASE_DESCRIPTIONS: Record<string, string> = {
  preflight: "check the host can run Kubernetes (CPU, memory, ports, swap, cgroups, runtime)",
  prepare: "container runtime, binaries, kubelet prerequisites and images",
  certs: "certificate authorities and certificates under /etc/kubernetes/pki",
  kubeconfig: "admin, super-admin, kubelet, controller-manager and scheduler kubeconfigs",
  "kubelet-start": "kubelet configuration and flags; kubelet running",
  etcd: "local (stacked) etcd member",
  "control-plane": "kube-apiserver, kube-controller-manager, kube-scheduler",
  "wait-control-plane": "wait until the API server is ready, diagnose what is not",
  "bootstrap-rbac": "RBAC for cluster admins and for bootstrapping nodes",
  "upload-config": "the effective cluster file, and kubeadm's ClusterConfiguration and shared kubelet configuration, in ConfigMaps in kube-system",
  "mark-control-plane": "control-plane label (and taint unless it is also a worker)",
  "upload-certs": "with --upload-certs: the shared CAs and keys sealed under the certificate key in Secret kube-system/kubeadm-certs",
  "download-certs": "with --certificate-key: the shared CAs and keys read from Secret kube-system/kubeadm-certs and opened",
  "bootstrap-token": "a bootstrap token for joining nodes",
  "cluster-info": "kube-public/cluster-info, signed for each token",
  addons: "CNI configuration, kube-proxy, CoreDNS",
  ha: "haproxy in front of every API server and keepalived holding the virtual IP (spec.ha)",
  "control-plane-join": "another control plane: etcd learner added, local etcd, promoted; control plane; wait; marked",
  "join": "a worker's CNI configuration once its kubelet registered the Node",
};

/** join's phases in order, as its tasks declare them. */
export function joinPhases(): Array<{ name: string; description: string }> {
  return [...new Set(clusterTasks("join").map((t) => t.phase))].map((name) => ({ name, description: PHASE_DESCRIPTIONS[name] ?? name }));
}

/** init's phases in order, as its tasks declare them. */
export function initPhases(): Array<{ name: string; description: string }> {
  return [...new Set(initTasks().map((t) => t.phase))].map((name) => ({ name, description: PHASE_DESCRIPTIONS[name] ?? name }));
}


/** init's tasks: the first control plane's part of the cluster plan (kubeadm init). */
export function initTasks(): Task[] {
  return clusterTasks("init");
}

export { firstControlPlane, IMAGES_TASK };
