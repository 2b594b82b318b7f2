#!/bin/sh
# keepalived's check on this control plane (written by kubeprov): the local haproxy forwards to a
# ready API server, and this node's own kube-apiserver is ready. Either failing moves the VIP away.
curl -sfk --max-time 1 -o /dev/null https://127.0.0.1:{{haproxyPort}}/readyz || exit 1
curl -sfk --max-time 1 -o /dev/null https://127.0.0.1:{{apiserverPort}}/readyz || exit 1
exit 0
