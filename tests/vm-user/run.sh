#!/bin/sh
# The vfio-user test VM's payload (runs in the guest as /test/run.sh, busybox sh, as root),
# booted by scripts/vm/test-vfio-user under QEMU 11 with edu either behind vfio-user-pci (a
# vfio-user server on the host emulates it) or QEMU's own (--builtin-edu, the reference). The
# guest cannot tell which: the same checks must pass against both. Everything goes through
# sysfs and uio (no IOMMU here, so no VFIO in the guest). Each check is a function
# `check_NAME`, run in the order of CHECKS; it prints what it saw and returns non-zero on
# failure, and prints PASS or FAIL with its name; any FAIL fails the payload.
#
# /init exports DEVFD_VM_EDU (edu's BDF) and DEVFD_VM_MODULES_FAILED; /test/bin (edu-user,
# tests/vm-user/edu-user.c) is on PATH; /lib/devfd-vm.sh has vm_driver, vm_unbind, vm_wait_for.
# shellcheck source=scripts/vm/guest/devfd-vm.sh
. /lib/devfd-vm.sh

CHECKS="
  modules_uio
  edu_in_sysfs
  config_space
  bar0_mmio
  dma_round_trip
  uio_bind
  uio_intx
  dma_round_trip_irq
  uio_unbind
"

BDF=$DEVFD_VM_EDU
UIO_DRV=/sys/bus/pci/drivers/uio_pci_generic

no() { echo "  $*"; return 1; }

# edu-user ARGS...: runs the C program, its output indented.
edu_user() {
  edu-user "$@" >/tmp/edu-user.out 2>&1
  rc=$?
  sed 's/^/  /' /tmp/edu-user.out
  [ "$rc" = 0 ] || no "edu-user $* exited $rc"
}

check_modules_uio() {
  [ -z "$DEVFD_VM_MODULES_FAILED" ] || echo "  (insmod failed: $DEVFD_VM_MODULES_FAILED)"
  for m in uio uio_pci_generic; do
    [ -d "/sys/module/$m" ] || no "module $m not loaded" || return 1
  done
  [ -d "$UIO_DRV" ] || no "no $UIO_DRV" || return 1
  echo "  uio, uio_pci_generic loaded"
}

check_edu_in_sysfs() {
  found=
  for d in /sys/bus/pci/devices/*; do
    v=$(cat "$d/vendor") dev=$(cat "$d/device") cl=$(cat "$d/class")
    echo "  $(basename "$d") $v:$dev class $cl driver $(vm_driver "$(basename "$d")")"
    [ "$v:$dev" = 0x1234:0x11e8 ] && found=${found:-$(basename "$d")}
  done
  [ -n "$found" ] || no "no 1234:11e8 function in /sys/bus/pci/devices" || return 1
  [ "$found" = "$BDF" ] || no "/init found edu at '$BDF', sysfs at $found" || return 1
  [ -z "$(vm_driver "$BDF")" ] || no "$BDF is bound to $(vm_driver "$BDF")" || return 1
  echo "  edu at $BDF, no driver"
}

check_config_space() {
  [ -n "$BDF" ] || no "no edu" || return 1
  edu_user config "$BDF"
}

check_bar0_mmio() {
  [ -n "$BDF" ] || no "no edu" || return 1
  edu_user bar0 "$BDF"
}

check_dma_round_trip() {
  [ -n "$BDF" ] || no "no edu" || return 1
  edu_user dma "$BDF"
}

check_uio_bind() {
  [ -n "$BDF" ] || no "no edu" || return 1
  # new_id makes uio_pci_generic probe every unbound 1234:11e8 function: edu binds to it.
  echo "1234 11e8" >"$UIO_DRV/new_id" || no "writing '1234 11e8' to $UIO_DRV/new_id failed" || return 1
  n=0
  while [ "$(vm_driver "$BDF")" != uio_pci_generic ]; do
    n=$((n + 1))
    if [ "$n" -gt 50 ]; then
      dmesg | tail -5 | sed 's/^/  dmesg: /'
      no "$BDF did not bind to uio_pci_generic (it needs INTx and INTx masking)"
      return 1
    fi
    sleep 0.1
  done
  vm_wait_for "/sys/bus/pci/devices/$BDF/uio" 5 || no "no /sys/bus/pci/devices/$BDF/uio" || return 1
  UIO=
  for u in "/sys/bus/pci/devices/$BDF/uio"/uio*; do UIO=${UIO:-$(basename "$u")}; done
  vm_wait_for "/dev/$UIO" 5 || no "no /dev/$UIO" || return 1
  [ -c "/dev/$UIO" ] || no "/dev/$UIO is not a character device" || return 1
  echo "  $BDF bound to uio_pci_generic: /dev/$UIO, irq $(cat "/sys/bus/pci/devices/$BDF/irq")"
}

check_uio_intx() {
  [ -c "/dev/${UIO:-none}" ] || no "no uio device (uio_bind failed)" || return 1
  edu_user uio "$BDF" "/dev/$UIO" || return 1
  grep uio /proc/interrupts | sed 's/^ */  interrupts: /'
}

check_dma_round_trip_irq() {
  [ -c "/dev/${UIO:-none}" ] || no "no uio device (uio_bind failed)" || return 1
  edu_user dma "$BDF" "/dev/$UIO"
}

check_uio_unbind() {
  [ -e "$UIO_DRV/new_id" ] || no "no $UIO_DRV" || return 1
  echo "1234 11e8" >"$UIO_DRV/remove_id" 2>/dev/null
  [ "$(vm_driver "$BDF")" != uio_pci_generic ] || echo "$BDF" >"$UIO_DRV/unbind" ||
    no "unbinding $BDF from uio_pci_generic failed" || return 1
  [ -z "$(vm_driver "$BDF")" ] || no "$BDF still bound to $(vm_driver "$BDF")" || return 1
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
echo "vm-user checks: $pass passed, $fail failed${failed:+ (}${failed# }${failed:+)}"
[ "$fail" = 0 ]
