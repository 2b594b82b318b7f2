# Removes the lock file only while it is ours (its id line is {{idLine}}): a lock taken over
# by another run after we stalled stays (templates/lock/release.sh).
grep -qx {{idLine}} {{path}} 2>/dev/null && rm -f {{path}}
