#!/bin/sh
# Takes an etcd snapshot on this control plane (run by `kubeprov etcd snapshot save`). The snapshot
# holds every Secret of the cluster: it is written into a root-only directory with mode 0600, and
# kubeprov removes it from here as soon as it has copied it.
set -eu
umask 077
dir='{{dir}}'
mkdir -p "$dir"
chmod 0700 "$dir"
{{etcdctl}} snapshot save '{{file}}' >/dev/null
chmod 0600 '{{file}}'
