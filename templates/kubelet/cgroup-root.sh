#!/bin/sh
# Creates this node's kubelet cgroup root ({{cgroupRoot}}) in every cgroup hierarchy before the
# kubelet starts (written by kubeprov). Node containers share the host's cgroups (--cgroupns=host),
# so each node's kubelet gets its own root instead of every node using /kubepods.
# It also removes the empty cgroups left under that root: when the node container stops, its pods'
# cgroups stay on the host, and at the next start the kubelet's cAdvisor spends about 3 s on each
# of them ("Failed to create existing container") before the kubelet runs any pod. Only empty
# cgroups can be removed (rmdir fails on one with processes or children), and no container is
# created while the kubelet is not running, so live pods are never touched.
set -e
root='{{cgroupRoot}}'
prune() { find "$1" -mindepth 1 -depth -type d -exec rmdir {} \; 2>/dev/null || true; }
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
  # cgroup v2: one hierarchy; enable the controllers down the path.
  path=/sys/fs/cgroup
  for part in $(echo "$root" | tr '/' ' '); do
    for c in $(cat "$path/cgroup.controllers"); do echo "+$c" > "$path/cgroup.subtree_control" 2>/dev/null || true; done
    path="$path/$part"
    mkdir -p "$path"
  done
  prune "$path"
  exit 0
fi
for d in /sys/fs/cgroup/*/; do
  d=${d%/}
  # Only real hierarchies: skip symlinks (cpu,cpuacct -> cpu) and plain directories.
  [ -L "$d" ] && continue
  [ -f "$d/cgroup.procs" ] || continue
  mkdir -p "$d$root"
  prune "$d$root"
  case "$d" in
    */cpuset|*/cpuset,*|*,cpuset)
      # A new cpuset cgroup is empty: copy cpus and mems down from the parents.
      path="$d"
      for part in $(echo "$root" | tr '/' ' '); do
        parent="$path"; path="$path/$part"
        for f in cpuset.cpus cpuset.mems; do
          [ -s "$path/$f" ] && [ -n "$(cat "$path/$f")" ] || cat "$parent/$f" > "$path/$f"
        done
      done
      ;;
  esac
done
