# Records what kubeprov installed: "SHA256 SIZE CTIME INODE MODE PATH" for each binary in
# {{paths}}, written to {{stamp}} atomically (mode 0644), and printed as "SHA256 MODE" lines in
# order for the caller to compare with the artifacts (templates/prepare/binary-stamp.sh).
set -e
mkdir -p "$(dirname {{stamp}})"
tmp={{stamp}}.kubeprov.tmp
: > "$tmp"
for p in {{paths}}; do
  if [ ! -f "$p" ]; then echo "- -"; continue; fi
  sum=$(sha256sum "$p" | cut -d' ' -f1)
  st=$(stat -c '%s %.9Z %i %a' "$p")
  echo "$sum $st $p" >> "$tmp"
  echo "$sum ${st##* }"
done
chmod 0644 "$tmp"
mv -f "$tmp" {{stamp}}
