# kubeprov reset: safe removal (templates/reset/remove.sh), shared by reset.sh and its tests.
# fail STEP MESSAGE records one failed step and goes on: every failure is printed as
# "failed STEP: MESSAGE" and counted in $failures.
failures=0
fail() { failures=$((failures + 1)); printf 'failed %s: %s\n' "$1" "$2"; }

# mounts MODE DIR...: the mount points of this host (from /proc/self/mountinfo, with the kernel's
# octal escapes for space, tab and backslash undone) that are below one of the DIRs ("below"), or
# that are a DIR or below it ("at-or-below"). Deepest first: reverse order puts /a/b/c before /a/b.
mounts() {
  mode=$1; shift
  awk -v mode="$mode" -v dirs="$*" '
    function unescape(s,   out, i, code, ch) {
      out = ""
      while ((i = index(s, "\\")) > 0) {
        code = substr(s, i + 1, 3)
        if (code == "040") ch = " "; else if (code == "011") ch = "\t"; else if (code == "134") ch = "\\"; else ch = "\\" code
        out = out substr(s, 1, i - 1) ch
        s = substr(s, i + 4)
      }
      return out s
    }
    BEGIN { n = split(dirs, d, " ") }
    {
      m = unescape($5)
      for (i = 1; i <= n; i++) {
        if (index(m, d[i] "/") == 1 || (mode == "at-or-below" && m == d[i])) { print m; break }
      }
    }' /proc/self/mountinfo | sort -r
}

# unmount_below DIR...: unmounts everything mounted below the DIRs, deepest first (a lazy unmount
# when a plain one is refused: the mount leaves this tree at once). Reports what stays mounted.
unmount_below() {
  mounts below "$@" | while IFS= read -r m; do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
  left=$(mounts below "$@" | tr '\n' ' ')
  if [ -n "$left" ]; then fail unmount "still mounted: $left"; fi
}

# remove_path PATH: removes one allow-listed path without ever leaving it.
#  - its parent directory must be the path itself, not reached through a symlink (else the
#    removal would land wherever the link points): otherwise it is kept and reported;
#  - a symlink is unlinked, never followed (whatever it points to stays);
#  - a directory with a mount below it is kept and reported (nothing is deleted across a mount);
#  - a directory that is itself a mount point (a disk for etcd's data) is emptied and kept;
#  - rm -rf never follows symlinks inside the tree, and --one-file-system keeps it from entering
#    any other file system mounted there meanwhile.
remove_path() {
  p=$1
  if [ ! -e "$p" ] && [ ! -L "$p" ]; then return 0; fi
  parent=${p%/*}
  [ -n "$parent" ] || parent=/
  real=$(cd -P -- "$parent" 2>/dev/null && pwd)
  if [ "$real" != "$parent" ]; then
    fail "remove $p" "kept: $parent leads to ${real:-?} through a symlink, which reset does not follow"
    return 0
  fi
  if [ -L "$p" ] || [ ! -d "$p" ]; then
    out=$(rm -f -- "$p" 2>&1) || fail "remove $p" "$out"
    return 0
  fi
  below=$(mounts below "$p" | tr '\n' ' ')
  if [ -n "$below" ]; then
    fail "remove $p" "kept: still mounted below it: $below"
    return 0
  fi
  if [ -n "$(mounts at-or-below "$p")" ]; then
    out=$(find "$p" -xdev -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system -- {} + 2>&1) || fail "remove $p" "$out"
    return 0
  fi
  out=$(rm -rf --one-file-system -- "$p" 2>&1) || fail "remove $p" "$out"
}

# is_kubeprov_file PATH: a regular file (not a symlink: a masked unit is a link to /dev/null)
# whose text names kubeprov, i.e. one kubeprov wrote.
is_kubeprov_file() {
  [ -f "$1" ] && [ ! -L "$1" ] && grep -q kubeprov -- "$1" 2>/dev/null
}

# remove_dir_if_empty DIR: a directory kubeprov created, removed only when nothing else is in it.
remove_dir_if_empty() {
  if [ -d "$1" ] && [ ! -L "$1" ]; then rmdir -- "$1" 2>/dev/null || true; fi
}
