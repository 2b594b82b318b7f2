# kubeprov's cluster lock, taken on one host (templates/lock/acquire.sh).
# stdin: the new lock file's content (key=value lines, one of them id=...).
# Prints one line: "acquired", "taken-over AGE" followed by the previous lock file, or
# "held AGE" followed by the current lock file. AGE: seconds since the lock was last renewed.
# The dead id line: the id line of a lock whose holder is known to be gone (a kubeprov process on the
# machine running this one that no longer exists): that lock is taken over at once, as a stale one.
f={{path}}
new=$(cat)
id=$(printf '%s\n' "$new" | sed -n 's/^id=//p')
mkdir -p "$(dirname "$f")"
# Created only if absent (noclobber opens with O_EXCL): of two runs, exactly one succeeds.
if ( set -C; printf '%s\n' "$new" > "$f" ) 2>/dev/null; then echo acquired; exit 0; fi
cur=$(cat "$f" 2>/dev/null) || cur=
# Ours already (a retried acquire).
if printf '%s\n' "$cur" | grep -qx "id=$id"; then echo acquired; exit 0; fi
m=$(stat -c %Y "$f" 2>/dev/null) || m=$(date +%s)
age=$(( $(date +%s) - m ))
if [ "$age" -gt {{staleSeconds}} ] || printf '%s\n' "$cur" | grep -qx {{deadIdLine}}; then
  # Stale: rename it aside (only one run can), check it is the file judged stale, then create
  # a new one exclusively. A lock renewed in between is put back.
  side="$f.stale.$$"
  if mv "$f" "$side" 2>/dev/null; then
    if [ "$(cat "$side")" = "$cur" ]; then
      rm -f "$side"
      if ( set -C; printf '%s\n' "$new" > "$f" ) 2>/dev/null; then echo "taken-over $age"; printf '%s\n' "$cur"; exit 0; fi
    else
      ln "$side" "$f" 2>/dev/null; rm -f "$side"
    fi
  fi
fi
echo "held $age"
cat "$f" 2>/dev/null
exit 0
