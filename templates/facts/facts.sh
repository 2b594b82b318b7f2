# kubeprov's host facts (templates/facts/facts.sh): key=value lines, one remote command.
# os.* lines are /etc/os-release's own lines (values still quoted as there); everything else is
# one value per line. Shell built-ins read files directly where they can: each process costs
# time on a busy host.
if [ -r /etc/os-release ]; then while IFS='=' read -r k v || [ -n "$k" ]; do case "$k" in ID|ID_LIKE|VERSION_ID|PRETTY_NAME) echo "os.$k=$v";; esac; done < /etc/os-release; fi
v=; { read -r v < /proc/sys/kernel/osrelease; } 2>/dev/null || v=$(uname -r); echo "kernel=$v"
echo "machine=$(uname -m)"
echo "cpus=$(nproc 2>/dev/null || getconf _NPROCESSORS_ONLN 2>/dev/null)"
while read -r k v rest; do if [ "$k" = "MemTotal:" ]; then echo "memtotal_kb=$v"; break; fi; done < /proc/meminfo
v=; { read -r v < /proc/sys/kernel/hostname; } 2>/dev/null || v=$(hostname); echo "hostname=$v"
if [ -e /.dockerenv ]; then echo "container.dockerenv=1"; fi
if [ -r /run/systemd/container ]; then v=; read -r v < /run/systemd/container; echo "container.systemd=$v"; fi
c=$({ tr '\0' '\n' < /proc/1/environ; } 2>/dev/null | sed -n 's/^container=//p'); if [ -n "$c" ]; then echo "container.environ=$c"; fi
echo "cgroupfs=$(stat -fc %T /sys/fs/cgroup 2>/dev/null)"
v=; { read -r v < /proc/1/comm; } 2>/dev/null; echo "pid1=$v"
# A node already set up has the cluster CA at kubeadm's place (the PKI then needs no new keys up front).
if [ -e /etc/kubernetes/pki/ca.crt ]; then echo "pki.ca=1"; fi
for pm in apt-get dnf yum; do if command -v $pm >/dev/null 2>&1; then echo "pkg=$pm"; break; fi; done
exit 0
