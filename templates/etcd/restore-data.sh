#!/bin/sh
# Rebuilds this control plane's etcd data directory from a snapshot (run by `kubeprov etcd snapshot
# restore` on the first control plane, etcd stopped): etcdutl writes a fresh data directory holding
# a one-member cluster (this member's name and peer URL), the old one is kept aside root-only, and the
# fresh one takes its place. The revision is bumped and marked compacted, as etcd advises for
# Kubernetes, so that no client's watch resumes from a revision the restored data never had.
# The uploaded snapshot copy is removed whatever happens.
set -eu
umask 077
snapshot='{{snapshot}}'
data='{{dataDir}}'
fresh='{{dataDir}}.restore-{{stamp}}'
aside='{{dataDir}}.before-restore-{{stamp}}'
trap 'rm -f "$snapshot"' EXIT
rm -rf "$fresh"
{{etcdutl}} snapshot restore "$snapshot" \
  --data-dir "$fresh" \
  --name '{{name}}' \
  --initial-cluster '{{initialCluster}}' \
  --initial-advertise-peer-urls '{{peerURL}}' \
  --bump-revision {{bumpRevision}} --mark-compacted
if [ -e "$data" ]; then
  mv "$data" "$aside"
  chmod 0700 "$aside"
fi
mv "$fresh" "$data"
chmod 0700 "$data"
