// Phase "kubeconfig": admin.conf, super-admin.conf (first control plane only), controller-manager.conf,
// scheduler.conf and kubelet.conf on each control plane, signed by the cluster CA that phase
// "certs" put there. Workers get their kubelet credentials by TLS bootstrap (join), not here.
import type { Task } from "../engine/task.js";
import { pkiTask } from "./certs.js";

export function kubeconfigTasks(): Task[] {
  return [
    pkiTask({
      name: "kubeconfig/control-plane",
      phase: "kubeconfig",
      description: "kubeconfigs for the administrator, controller-manager, scheduler and kubelet",
      plan: { certs: false, kubeconfigs: true },
      after: ["certs/pki"],
      perHost: true,
    }),
  ];
}
