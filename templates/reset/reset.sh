# kubeprov reset (templates/reset/reset.sh): undo what init and join did on this host, as
# `kubeadm reset` does. Every step runs even when an earlier one failed; each failure is one line
# "failed STEP: MESSAGE" on stdout and the script still exits 0, so kubeprov reports all of them.
# Files are removed only from kubeprov's allow-list (rendered in below), never by following a
# symlink out of it and never across a mount point. Images, binaries and the runtime stay.
export LC_ALL=C PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
marker={{markerFile}}

# A host whose marker names another cluster is not ours to reset: refuse before changing anything.
if [ {{ignoreMarker}} != 1 ] && [ -f "$marker" ] && [ ! -L "$marker" ]; then
  owner=$(head -n 1 "$marker" | tr -cd 'A-Za-z0-9.-' | cut -c 1-63)
  if [ -n "$owner" ] && [ "$owner" != {{clusterName}} ]; then echo "refused $owner"; exit 0; fi
fi

{{removeFunctions}}

# 1. The kubelet first (it would restart what the next steps remove), then kubeprov's own
#    control-plane units (systemd mode); units installed by someone else are left alone.
systemctl stop kubelet >/dev/null 2>&1
systemctl disable kubelet >/dev/null 2>&1
if systemctl is-active --quiet kubelet 2>/dev/null; then fail "stop kubelet" "kubelet.service is still active"; fi
for u in {{componentUnits}}; do
  if is_kubeprov_file "/etc/systemd/system/$u.service"; then
    systemctl disable --now "$u" >/dev/null 2>&1
    if systemctl is-active --quiet "$u" 2>/dev/null; then fail "stop $u" "$u.service is still active"; fi
  fi
done

# 1b. keepalived and haproxy of an HA control plane, when their configuration is kubeprov's: keepalived
#     first, so the virtual IP moves to another control plane at once instead of staying on a host
#     that no longer serves the API.
for pair in keepalived:{{keepalivedConfig}} haproxy:{{haproxyConfig}}; do
  u=${pair%%:*}
  if is_kubeprov_file "${pair#*:}"; then
    systemctl disable --now "$u" >/dev/null 2>&1
    if systemctl is-active --quiet "$u" 2>/dev/null; then fail "stop $u" "$u.service is still active"; fi
  fi
done

# 2. The pods' containers. Through the CRI first (crictl), so the runtime tears down each pod's
#    network and forgets it; then whatever is left in containerd's k8s.io namespace (images stay).
if command -v crictl >/dev/null 2>&1 && crictl --timeout 10s pods -q >/dev/null 2>&1; then
  for pod in $(crictl --timeout 30s pods -q 2>/dev/null); do
    crictl --timeout 30s stopp "$pod" >/dev/null 2>&1
    crictl --timeout 30s rmp -f "$pod" >/dev/null 2>&1
  done
fi
if command -v ctr >/dev/null 2>&1; then
  for c in $(ctr -n k8s.io containers ls -q 2>/dev/null); do ctr -n k8s.io tasks kill -s SIGKILL "$c" >/dev/null 2>&1; done
  for c in $(ctr -n k8s.io containers ls -q 2>/dev/null); do
    i=0
    while ! ctr -n k8s.io tasks rm -f "$c" >/dev/null 2>&1 && ctr -n k8s.io tasks ls -q 2>/dev/null | grep -qx "$c" && [ $i -lt 20 ]; do i=$((i + 1)); sleep 0.2; done
    ctr -n k8s.io containers rm "$c" >/dev/null 2>&1
  done
  n=$(ctr -n k8s.io containers ls -q 2>/dev/null | wc -l)
  if [ "$n" -gt 0 ]; then fail containers "$n containers left in containerd's k8s.io namespace"; fi
fi

# 3. Mounts the kubelet and the CNI plugins made (volumes, network namespaces), deepest first.
unmount_below {{unmountBelow}}

# 4. The allow-list, one path at a time (a path reset cannot remove is reported, the rest go on).
for p in {{removePaths}}; do remove_path "$p"; done
for p in {{kubeprovFiles}}; do if is_kubeprov_file "$p"; then remove_path "$p"; fi; done
if ! out=$(systemctl daemon-reload 2>&1); then fail daemon-reload "$out"; fi

# 5. Chains kube-proxy and the CNI plugins made ({{chainPrefixes}}, each followed by '-'), in every
#    table: the rules that jump to them go too.
for t in filter nat mangle raw; do
  iptables-save -t $t >/dev/null 2>&1 || continue
  if iptables-save -t $t | grep -q -E '({{chainPrefixes}})-'; then
    iptables-save -t $t | grep -v -E '({{chainPrefixes}})-' | iptables-restore -T $t 2>/dev/null || iptables-save -t $t | grep -v -E '({{chainPrefixes}})-' | iptables-restore 2>/dev/null
  fi
done
if iptables-save 2>/dev/null | grep -q -E '^:({{chainPrefixes}})-'; then fail iptables "chains {{chainPrefixes}} still present"; fi

# 6. Network interfaces the CNI plugins made.
for l in {{links}}; do
  if ip link show "$l" >/dev/null 2>&1; then
    out=$(ip link delete "$l" 2>&1) || fail "link $l" "$out"
  fi
done

# 7. This node's kubelet cgroup root (node containers share the host's cgroups): empty cgroups only.
root={{cgroupRoot}}
if [ -n "$root" ]; then
  for d in /sys/fs/cgroup/*"$root" /sys/fs/cgroup"$root"; do
    if [ -d "$d" ] && [ ! -L "$d" ]; then
      find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
      if [ -d "$d" ]; then fail cgroups "$d is not empty"; fi
    fi
  done
fi

# 8. Directories kubeprov created, when nothing else is in them; the cluster marker last, and only
#    when everything else succeeded (a half-reset host still belongs to its cluster).
if [ "$failures" -eq 0 ]; then remove_path "$marker"; fi
for d in {{emptyDirs}}; do remove_dir_if_empty "$d"; done
exit 0
