# Prints "SHA256 MODE" for each binary in {{paths}}, in order ("- -" for a missing one), then one
# line "stamp fresh" or "stamp stale" (templates/prepare/binary-hashes.sh). A binary whose size,
# ctime (to the nanosecond) and inode are those {{stamp}} recorded when kubeprov installed it is not read again: the
# kernel sets ctime on every write, rename or chmod and no user can set it back, so an unchanged
# stat means unchanged bytes. Any other binary is hashed (and the stamp is stale).
fresh=fresh
for p in {{paths}}; do
  if [ ! -f "$p" ]; then echo "- -"; fresh=stale; continue; fi
  st=$(stat -c '%s %.9Z %i %a' "$p")
  rec=$(awk -v p="$p" '$6 == p { print $2, $3, $4, $5 " " $1; exit }' {{stamp}} 2>/dev/null)
  if [ -n "$rec" ] && [ "${rec% *}" = "$st" ]; then
    echo "${rec##* } ${st##* }"
  else
    fresh=stale
    echo "$(sha256sum "$p" | cut -d' ' -f1) ${st##* }"
  fi
done
echo "stamp $fresh"
