#!/bin/sh
# Keeps this control plane's etcd data aside before it joins the restored etcd again (run by
# `kubeprov etcd snapshot restore` on every control plane but the first, etcd stopped). The old data
# moves to a root-only directory; an empty data directory takes its place, so the join adds this
# member as a new learner that copies the restored data from the leader.
set -eu
data='{{dataDir}}'
aside='{{dataDir}}.before-restore-{{stamp}}'
if [ -e "$data" ]; then
  mv "$data" "$aside"
  chmod 0700 "$aside"
fi
mkdir -p "$data"
chmod 0700 "$data"
