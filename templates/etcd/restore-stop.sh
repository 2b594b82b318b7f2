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
