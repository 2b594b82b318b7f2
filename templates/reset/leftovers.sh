# What reset would still remove on this host (templates/reset/leftovers.sh), read-only: one line
# each, none when the host is clean. A first line "marker NAME" says which cluster the host's
# marker file names (kubeprov checks it before any change).
export LC_ALL=C PATH="$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
marker={{markerFile}}
if [ -f "$marker" ] && [ ! -L "$marker" ]; then printf 'marker %s\n' "$(head -n 1 "$marker" | tr -cd 'A-Za-z0-9.-' | cut -c 1-63)"; fi
for p in {{paths}}; do if [ -e "$p" ] || [ -L "$p" ]; then echo "$p"; fi; done
# Units and drop-ins count only when kubeprov wrote them (reset leaves anyone else's).
for p in {{kubeprovFiles}}; do if [ -f "$p" ] && [ ! -L "$p" ] && grep -q kubeprov -- "$p" 2>/dev/null; then echo "$p"; fi; done
systemctl is-active --quiet kubelet 2>/dev/null && echo "kubelet running"
systemctl is-enabled --quiet kubelet 2>/dev/null && echo "kubelet enabled"
n=$(ctr -n k8s.io containers ls -q 2>/dev/null | wc -l); [ "$n" -gt 0 ] && echo "$n containers"
awk '{ print $5 }' /proc/self/mountinfo | grep -E '^({{mountPattern}})/' | sed 's/^/mount /'
iptables-save 2>/dev/null | grep -q -E '^:({{chainPrefixes}})-' && echo "iptables chains {{chainPrefixes}}"
for l in {{links}}; do ip link show "$l" >/dev/null 2>&1 && echo "link $l"; done
true
