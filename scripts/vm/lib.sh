# Shared by the scripts in scripts/vm/ (sourced, not run).
# shellcheck shell=bash disable=SC2034,SC2154  # used by the scripts that source it

vm_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
vm_cache=${DEVFD_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/devfd-vm}
vm_target=x86_64-unknown-linux-gnu
PATH=$PATH:/usr/sbin:/sbin # depmod, as a user too

# Everything a script says goes to stderr, so a script's stdout can carry its one result
# (a path) to the caller.
say() { printf '%s: %s\n' "$vm_me" "$*" >&2; }
die() { printf '%s: FAILED: %s\n' "$vm_me" "$*" >&2; exit 1; }

need_tool() { # TOOL PACKAGE
  command -v "$1" >/dev/null 2>&1 || die "$1 is missing (Debian package $2; scripts/install-deps installs it as root)"
}

# Seconds since the epoch with milliseconds, and a difference of two of them.
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
