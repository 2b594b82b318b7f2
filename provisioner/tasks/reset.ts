// Phase "reset": undo what init/join did on a host (kubeadm reset), idempotent: the kubelet stopped
// and disabled, kubeprov's control-plane units removed, every container in containerd's k8s.io
// namespace removed (images stay: a later init is fast), kubelet mounts released, Kubernetes'
// directories and the CNI configuration removed, the iptables chains kube-proxy and CNI made
// (KUBE-*, CNI-*) dropped, the cni0 bridge and this node's kubelet cgroup root removed.
import { CNI_CONF_DIR, ETCD_DATA_DIR, KUBELET_DIR, KUBERNETES_DIR } from "../constants.js";
import type { CheckResult, Host, RunContext, Task } from "../engine/task.js";
import { ALL_COMPONENTS } from "../plan/components.js";
import { KUBELET_CGROUP_SCRIPT, KUBELET_DROPIN, kubeletCgroupRoot } from "./kubelet.js";
import { shq } from "../transport/transport.js";

export const RESET_TASK = "reset/node";

const UNITS = ALL_COMPONENTS.map((c) => `/etc/systemd/system/${c}.service`);
const PATHS = [KUBERNETES_DIR, ETCD_DATA_DIR, KUBELET_DIR, "/var/lib/cni", `${CNI_CONF_DIR}/10-kubeprov-bridge.conflist`, KUBELET_DROPIN, KUBELET_CGROUP_SCRIPT, ...UNITS];

/** What is left on the host, one line each (empty: nothing to reset). Read-only. */
export function leftoversScript(): string {
  return [
    `for p in ${PATHS.map(shq).join(" ")}; do [ -e "$p" ] && echo "$p"; done`,
    `systemctl is-active --quiet kubelet 2>/dev/null && echo "kubelet running"`,
    `n=$(ctr -n k8s.io containers ls -q 2>/dev/null | wc -l); [ "$n" -gt 0 ] && echo "$n containers"`,
    `iptables-save 2>/dev/null | grep -q -E '^:(KUBE|CNI)-' && echo "iptables chains KUBE-*/CNI-*"`,
    `ip link show cni0 >/dev/null 2>&1 && echo "bridge cni0"`,
    "true",
  ].join("\n");
}

export function resetScript(cgroupRoot: string | undefined): string {
  const units = ALL_COMPONENTS.join(" ");
  return [
    "systemctl stop kubelet 2>/dev/null; systemctl disable kubelet >/dev/null 2>&1",
    `for u in ${units}; do if [ -e /etc/systemd/system/$u.service ]; then systemctl disable --now $u >/dev/null 2>&1; rm -f /etc/systemd/system/$u.service; fi; done`,
    // Containers of pods: kill the tasks, then remove the containers (sandboxes included).
    "for c in $(ctr -n k8s.io containers ls -q 2>/dev/null); do ctr -n k8s.io tasks kill -s SIGKILL $c >/dev/null 2>&1; done",
    "sleep 1",
    "for c in $(ctr -n k8s.io containers ls -q 2>/dev/null); do ctr -n k8s.io tasks rm -f $c >/dev/null 2>&1; ctr -n k8s.io containers rm $c >/dev/null 2>&1; done",
    // Mounts the kubelet made for pods' volumes and network namespaces.
    `awk '$2 ~ "^(${KUBELET_DIR}|/run/netns|/var/run/netns)/" {print $2}' /proc/mounts | sort -r | while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done`,
    `rm -rf ${PATHS.map(shq).join(" ")}`,
    "rmdir /etc/systemd/system/kubelet.service.d 2>/dev/null",
    "systemctl daemon-reload",
    // Chains kube-proxy and the CNI plugins made, in every table (rules that jump to them go too).
    "for t in filter nat mangle raw; do iptables-save -t $t >/dev/null 2>&1 || continue; " +
      "if iptables-save -t $t | grep -q -E '(KUBE|CNI)-'; then iptables-save -t $t | grep -v -E '(KUBE|CNI)-' | iptables-restore -T $t 2>/dev/null || iptables-save -t $t | grep -v -E '(KUBE|CNI)-' | iptables-restore; fi; done",
    "ip link delete cni0 >/dev/null 2>&1",
    ...(cgroupRoot
      ? [`for d in /sys/fs/cgroup/*/${cgroupRoot.replace(/^\//, "")} /sys/fs/cgroup/${cgroupRoot.replace(/^\//, "")}; do [ -d "$d" ] && find "$d" -depth -type d -exec rmdir {} + 2>/dev/null; done`]
      : []),
    "true",
  ].join("\n");
}

export function resetTasks(): Task[] {
  return [
    {
      name: RESET_TASK,
      phase: "reset",
      description: "stop the kubelet and control plane, remove containers, Kubernetes files, CNI configuration and iptables chains",
      hosts: (ctx: RunContext) => ctx.hosts,
      async check(host: Host): Promise<CheckResult> {
        const r = await host.transport.exec(leftoversScript(), { sudo: true, check: false });
        const left = r.stdout.trim().split("\n").filter(Boolean);
        return left.length ? { needed: true, reason: `remove ${left.join(", ")}` } : { needed: false, reason: "nothing of Kubernetes left" };
      },
      async apply(host: Host, ctx: RunContext) {
        await host.transport.exec(resetScript(kubeletCgroupRoot(ctx.cluster, host)), { sudo: true, timeoutMs: 180_000 });
        const r = await host.transport.exec(leftoversScript(), { sudo: true, check: false });
        const left = r.stdout.trim().split("\n").filter(Boolean);
        if (left.length) ctx.log("warn", `still present after reset: ${left.join(", ")}`, host, RESET_TASK);
        return { detail: left.length ? `reset; still present: ${left.join(", ")}` : "reset" };
      },
    },
  ];
}
