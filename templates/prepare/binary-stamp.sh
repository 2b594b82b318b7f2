# Installs binaries from the bundle this host sees, then records what kubeprov installed; each
# file is read once (templates/prepare/binary-stamp.sh).
# 1. {{copies}}: "NAME=SHA256" words for the binaries to copy from {{source}} into {{binDir}}.
#    Each is copied to a temporary name there, hashed, and moved into place only when its sha256
#    is the artifact's (a wrong or missing source leaves the old binary; the caller uploads it).
# 2. "SHA256 SIZE CTIME INODE MODE PATH" for each binary in {{paths}} goes to {{stamp}} atomically
#    (mode 0644), and "SHA256 MODE" lines are printed in order for the caller to compare with the
#    artifacts ("- -" for a missing one). A binary copied in step 1 is not read again: its sum is
#    the one taken from the bytes written.
set -e
copied=""
for e in {{copies}}; do
  n=${e%%=*}; want=${e#*=}
  src={{source}}/$n; dest={{binDir}}/$n; tmp={{binDir}}/.$n.kubeprov.tmp
  [ -f "$src" ] || continue
  mkdir -p {{binDir}}
  install -m 0755 "$src" "$tmp"
  got=$(sha256sum "$tmp" | cut -d' ' -f1)
  if [ "$got" = "$want" ]; then mv -f "$tmp" "$dest"; copied="$copied $dest=$got"; else rm -f "$tmp"; fi
done
mkdir -p "$(dirname {{stamp}})"
tmp={{stamp}}.kubeprov.tmp
: > "$tmp"
for p in {{paths}}; do
  if [ ! -f "$p" ]; then echo "- -"; continue; fi
  sum=""
  for c in $copied; do if [ "${c%=*}" = "$p" ]; then sum=${c##*=}; fi; done
  [ -n "$sum" ] || sum=$(sha256sum "$p" | cut -d' ' -f1)
  st=$(stat -c '%s %.9Z %i %a' "$p")
  echo "$sum $st $p" >> "$tmp"
  echo "$sum ${st##* }"
done
chmod 0644 "$tmp"
mv -f "$tmp" {{stamp}}
