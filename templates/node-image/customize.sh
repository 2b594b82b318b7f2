#!/bin/sh
# Runs once, in a chroot of the node image's root filesystem, after files/ was copied in.
set -eu

systemctl set-default multi-user.target

# Ours, and sshd.
systemctl enable kubeprov-node-setup.service kubeprov-ssh-hostkeys.service ssh.service

# Installed for tasks to enable; off by default.
for unit in containerd.service haproxy.service keepalived.service firewalld.service; do
  systemctl disable "$unit" 2>/dev/null || true
done

# Units that have nothing to do in a container, or fail there.
systemctl mask \
  systemd-udevd.service systemd-udevd-kernel.socket systemd-udevd-control.socket \
  systemd-modules-load.service systemd-remount-fs.service \
  sys-kernel-debug.mount sys-kernel-tracing.mount sys-kernel-config.mount \
  getty.target console-getty.service \
  apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer fstrim.timer 2>/dev/null || true

# One set of host keys for every node would let any node impersonate the others: each node makes
# its own at first boot (kubeprov-ssh-hostkeys.service).
rm -f /etc/ssh/ssh_host_*

# Each node gets its own machine id at boot.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id

mkdir -p /root/.ssh
chmod 0700 /root/.ssh

apt-get clean
rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin /var/log/*.log /tmp/* /var/tmp/*
