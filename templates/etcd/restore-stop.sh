#!/bin/sh
# Stops etcd and kube-apiserver on this control plane before an etcd snapshot restore (run by
# `kubeprov etcd snapshot restore`). Static pods: their manifests move to a root-only directory
# ({{asideDir}}) and the kubelet stops the pods; systemd units: stopped. The restore's own run of the
# cluster plan writes the manifests again (or starts the units) from the cluster file afterwards.
# Returns once neither process runs any more, so no etcd member or API server writes meanwhile.
set -eu
manifests='{{manifestsDir}}'
aside='{{asideDir}}'
for c in etcd kube-apiserver; do
  if [ -e "$manifests/$c.yaml" ]; then
    mkdir -p "$aside"
    chmod 0700 "$aside"
    mv "$manifests/$c.yaml" "$aside/"
  fi
  if [ -e "{{unitDir}}/$c.service" ]; then
    systemctl stop "$c.service"
  fi
done
# The kubelet stops a static pod within seconds of its manifest going away; a kubelet that is slow
# (a node just restarted) gets {{graceSeconds}} s, then the processes are sent SIGTERM (etcd and
# kube-apiserver shut down cleanly on it). Their manifests are gone, so nothing restarts them for long.
waited=0
while pgrep -x etcd >/dev/null || pgrep -x kube-apiserver >/dev/null; do
  if [ "$waited" -ge {{waitSeconds}} ]; then
    echo "still running {{waitSeconds}} s after being stopped:" >&2
    pgrep -a -x etcd >&2 || true
    pgrep -a -x kube-apiserver >&2 || true
    exit 1
  fi
  if [ "$waited" -ge {{graceSeconds}} ]; then
    [ "$waited" -ne {{graceSeconds}} ] || echo "SIGTERM sent after {{graceSeconds}} s (the kubelet had not stopped them yet)"
    pkill -TERM -x etcd || true
    pkill -TERM -x kube-apiserver || true
  fi
  sleep 1
  waited=$((waited + 1))
done
# A static pod that comes back with the same manifest gets the same pod UID: the kubelet would
# number its new containers after the dead ones and reuse their log directory, so the wait for the
# control plane would take a plain start for restarts. What the stopped pods left (sandboxes, dead
# containers, logs) is removed now, as the kubelet's garbage collection would do later.
if command -v crictl >/dev/null 2>&1; then
  for c in etcd kube-apiserver; do
    for p in $(crictl pods -q --namespace kube-system --name "^$c-{{nodeName}}\$" 2>/dev/null); do
      crictl stopp "$p" >/dev/null 2>&1 || true
      crictl rmp -f "$p" >/dev/null 2>&1 || true
    done
    rm -rf /var/log/pods/kube-system_"$c"-{{nodeName}}_*
  done
fi
