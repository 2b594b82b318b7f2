# Renews the lock file's time while it is ours (its id line is {{idLine}}); exits non-zero when
# it is not, so the holder learns it lost the lock (templates/lock/touch.sh).
grep -qx {{idLine}} {{path}} 2>/dev/null && touch {{path}}
