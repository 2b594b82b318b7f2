# Run by `kubeprov stop` on each control plane before its machine stops (provisioner/lifecycle/
# graceful-stop.ts). Stops the kubelet first, so that it does not start them again, then the
# components that hold leader-election leases (kube-scheduler, kube-controller-manager) with
# SIGTERM and a grace period, while the API server and etcd still run: kube-scheduler gives its
# lease up as it exits, so that the next start acquires it at once instead of waiting out the
# lease. Prints the host name (the prefix of the components' lease holder identities) when the host
# has the admin kubeconfig kubeprov releases the other leases with (not on machines without Kubernetes).
set -u
mode={{mode}}
grace={{graceSeconds}}
components='{{components}}'
if [ -f {{adminConf}} ]; then echo "hostname=$(hostname)"; fi
systemctl stop kubelet.service 2>/dev/null || true
if [ "$mode" = systemd ]; then
  units=''
  for c in $components; do units="$units $c.service"; done
  # systemctl waits for each unit's process to exit (SIGTERM, then SIGKILL after its stop time-out).
  timeout "$((grace + 5))" systemctl stop $units 2>/dev/null || true
elif command -v {{crictl}} >/dev/null 2>&1; then
  for c in $components; do
    for id in $({{crictl}} ps -q --state running --label io.kubernetes.pod.namespace=kube-system --name "^$c\$" 2>/dev/null); do
      # One stop per container, all at once: each is SIGTERM, then SIGKILL after the grace period.
      {{crictl}} stop --timeout "$grace" "$id" >/dev/null 2>&1 &
    done
  done
  wait
fi
echo stopped
