#!/bin/sh
# The test VM's payload (runs in the guest as /test/run.sh, busybox sh, as root). Each check is
# a function `check_NAME`, run in the order of CHECKS below; it prints what it saw and returns
# non-zero on failure. Each prints PASS or FAIL with its name; any FAIL fails the payload.
# To add a check: write `check_foo() { ...; }` and add `foo` to CHECKS where its state fits
# (the vfio checks leave edu unbound again at the end).
#
# /init exports DEVFD_VM_EDU (edu's BDF) and DEVFD_VM_MODULES_FAILED; /test/bin is on PATH
# (devfd, vfio-regions). Helpers (vm_bind_vfio, vm_unbind, vm_wait_for, vm_mounted) are in
# /lib/devfd-vm.sh, written by scripts/vm/build-guest.
. /lib/devfd-vm.sh
# shellcheck source=tests/vm/vfio-checks.sh
. /test/vfio-checks.sh

CHECKS="
  modules_loaded
  edu_in_sysfs
  pci_info_edu
  no_fusermount3
  serve_edu
  serve_sigkill_leaves_no_mount
  serve_again
  serve_pci_edu
  edu_driver_pci
  vfio_bind
  vfio_regions
  info_vfio
  serve_vfio
  edu_driver_vfio
  edu_c_vfio
  vfio_mask_unmask
  vfio_hostile
  vfio_sigkill_releases_group
  vfio_bench
  ls_pci_vfio
  vfio_unbind
"

BDF=$DEVFD_VM_EDU
MNT=/run/devfd

# Fails the current check with a message.
no() { echo "  $*"; return 1; }

# expect_eq WHAT GOT WANT
expect_eq() {
  [ "$2" = "$3" ] || no "$1: got '$2', want '$3'"
}

check_modules_loaded() {
  [ -z "$DEVFD_VM_MODULES_FAILED" ] || no "insmod failed: $DEVFD_VM_MODULES_FAILED" || return 1
  for m in fuse vfio vfio_iommu_type1 vfio_pci_core vfio_pci; do
    [ -d "/sys/module/$m" ] || no "module $m not loaded" || return 1
  done
  [ -c /dev/fuse ] || no "no /dev/fuse" || return 1
  [ -c /dev/vfio/vfio ] || no "no /dev/vfio/vfio" || return 1
  echo "  fuse, vfio, vfio_iommu_type1, vfio_pci_core, vfio_pci loaded; /dev/fuse, /dev/vfio/vfio"
}

check_edu_in_sysfs() {
  [ -n "$BDF" ] || no "no 1234:11e8 function on the bus" || return 1
  d=/sys/bus/pci/devices/$BDF
  expect_eq vendor "$(cat "$d/vendor")" 0x1234 || return 1
  expect_eq device "$(cat "$d/device")" 0x11e8 || return 1
  expect_eq driver "$(vm_driver "$BDF")" "" || return 1
  devfd ls --pci >/tmp/ls-pci || no "devfd ls --pci failed" || return 1
  sed 's/^/  /' /tmp/ls-pci
  short=${BDF#0000:}
  grep -E "^(0000:)?$short .*1234:11e8" /tmp/ls-pci >/dev/null ||
    no "devfd ls --pci has no line '$short ... 1234:11e8'"
}

check_pci_info_edu() {
  devfd info --pci "$BDF" >/tmp/info-pci 2>&1 || { sed 's/^/  /' /tmp/info-pci; no "devfd info --pci $BDF failed"; return 1; }
  sed 's/^/  /' /tmp/info-pci
  grep -q '1234:11e8' /tmp/info-pci || no "no 1234:11e8 in the description"
}

check_no_fusermount3() {
  # The point of the serve checks below: as root devfd mounts with mount(2) itself.
  if command -v fusermount3 >/dev/null 2>&1; then no "fusermount3 is here: $(command -v fusermount3)"; fi
  echo "  no fusermount3 in the guest"
}

# start_serve MOUNT ARGS...: starts `devfd serve` in the background (pid in $SERVE_PID), waits
# for its first device file.
start_serve() {
  m=$1
  shift
  mkdir -p "$m"
  devfd serve --mount "$m" "$@" >/tmp/serve.log 2>&1 &
  SERVE_PID=$!
  n=0
  while [ -z "$(ls "$m" 2>/dev/null)" ]; do
    n=$((n + 1))
    if [ "$n" -gt 200 ] || ! kill -0 "$SERVE_PID" 2>/dev/null; then
      sed 's/^/  serve: /' /tmp/serve.log
      no "devfd serve $* did not come up at $m"
      return 1
    fi
    sleep 0.1
  done
  sed 's/^/  serve: /' /tmp/serve.log
}

check_serve_edu() {
  start_serve "$MNT" --device edu || return 1
  vm_mounted "$MNT" || no "$MNT is not in /proc/mounts" || return 1
  grep " $MNT " /proc/mounts | sed 's/^/  mount: /'
  devfd ls "$MNT" | sed 's/^/  /'
  expect_eq "bar0+0" "$(devfd read "$MNT/edu0" bar0 0)" 0x010000ed || return 1
  devfd write "$MNT/edu0" bar0 4 0x12345678 || no "devfd write failed" || return 1
  expect_eq "bar0+4 after writing 0x12345678" "$(devfd read "$MNT/edu0" bar0 4)" 0xedcba987 || return 1
  echo "  devfd read $MNT/edu0 bar0 0 = 0x010000ed"
}

check_serve_sigkill_leaves_no_mount() {
  [ -n "${SERVE_PID:-}" ] || no "no server running (serve_edu failed)" || return 1
  kill -KILL "$SERVE_PID"
  wait "$SERVE_PID" 2>/dev/null
  n=0
  while vm_mounted "$MNT"; do
    n=$((n + 1))
    [ "$n" -le 50 ] || no "$MNT still mounted 5 s after SIGKILL of the server" || return 1
    sleep 0.1
  done
  echo "  SIGKILL: $MNT gone from /proc/mounts after ~$((n * 100)) ms"
}

check_serve_again() {
  start_serve "$MNT" --device edu || return 1
  expect_eq "bar0+0" "$(devfd read "$MNT/edu0" bar0 0)" 0x010000ed || return 1
  kill -INT "$SERVE_PID"
  wait "$SERVE_PID"
  rc=$?
  sed 's/^/  serve: /' /tmp/serve.log | tail -1
  expect_eq "exit status after SIGINT" "$rc" 0 || return 1
  ! vm_mounted "$MNT" || no "$MNT still mounted after SIGINT"
}

check_serve_pci_edu() {
  # The real edu from sysfs, no driver bound: BAR0 through sysfs resource0.
  start_serve /run/devfd-pci --pci "$BDF" --allow-bar-access || return 1
  devfd ls /run/devfd-pci | sed 's/^/  /'
  f=
  for p in /run/devfd-pci/*; do
    case "$p" in *.r[0-9]*) ;; *) f=${f:-$p} ;; esac
  done
  r=$(devfd read "$f" bar0 0) || no "devfd read $f bar0 0 failed"
  ok=0
  expect_eq "real edu bar0+0" "$r" 0x010000ed || ok=1
  if [ "$ok" = 0 ]; then
    devfd write "$f" bar0 4 0x0f0f0f0f || ok=1
    expect_eq "real edu bar0+4 after writing 0x0f0f0f0f" "$(devfd read "$f" bar0 4)" 0xf0f0f0f0 || ok=1
  fi
  kill -INT "$SERVE_PID"
  wait "$SERVE_PID"
  [ "$ok" = 0 ] && echo "  $f bar0+0 = 0x010000ed, bar0+4 complements"
  return "$ok"
}

check_vfio_bind() {
  GROUP=$(vm_bind_vfio "$BDF") || no "binding $BDF to vfio-pci failed" || return 1
  expect_eq driver "$(vm_driver "$BDF")" vfio-pci || return 1
  [ -c "$GROUP" ] || no "no group node $GROUP" || return 1
  ls -l /dev/vfio | sed 's/^/  /'
  echo "  $BDF bound to vfio-pci, group $GROUP"
}

check_vfio_regions() {
  [ -c "${GROUP:-}" ] || no "no vfio group (vfio_bind failed)" || return 1
  vfio-regions "$GROUP" "$BDF" >/tmp/vfio-regions 2>&1
  rc=$?
  sed 's/^/  /' /tmp/vfio-regions
  expect_eq "vfio-regions exit" "$rc" 0 || return 1
  # What the kernel reports for edu (../shared/TESTBEDS.md §3).
  grep -v '^device flags' /tmp/vfio-regions | grep -v '^bar0' >/tmp/vfio-got
  if ! diff /test/edu-vfio.expected /tmp/vfio-got >/tmp/vfio-diff; then
    sed 's/^/  diff: /' /tmp/vfio-diff
    no "region/irq info differs from edu-vfio.expected"
    return 1
  fi
  grep -q '^device flags .* regions 9 irqs 5$' /tmp/vfio-regions || no "DEVICE_GET_INFO: want 9 regions, 5 irqs" || return 1
  grep -q '^bar0+0 0x010000ed$' /tmp/vfio-regions || no "BAR0+0 is not 0x010000ed" || return 1
  grep -q '^bar0+4 wrote 0x12345678 read 0xedcba987$' /tmp/vfio-regions || no "BAR0+4 does not complement"
}

check_ls_pci_vfio() {
  devfd ls --pci | grep "${BDF#0000:}" | sed 's/^/  /' | tee /tmp/ls-line
  grep -q vfio-pci /tmp/ls-line || no "devfd ls --pci does not show vfio-pci bound to $BDF"
}

check_vfio_unbind() {
  stop_serve
  vm_unbind "$BDF" || no "unbinding $BDF failed" || return 1
  expect_eq driver "$(vm_driver "$BDF")" "" || return 1
  echo "  $BDF has no driver again"
}

pass=0
fail=0
failed=
for c in $CHECKS; do
  echo "--- $c"
  if "check_$c"; then
    echo "PASS $c"
    pass=$((pass + 1))
  else
    echo "FAIL $c"
    fail=$((fail + 1))
    failed="$failed $c"
  fi
done
echo "vm checks: $pass passed, $fail failed${failed:+ (}${failed# }${failed:+)}"
[ "$fail" = 0 ]
