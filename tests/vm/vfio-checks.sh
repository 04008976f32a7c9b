# shellcheck shell=sh
# Checks of `devfd serve --vfio` and of one driver on three devices (issue 8), sourced by
# run.sh. They expect edu bound to vfio-pci ($GROUP set by check_vfio_bind) and the kernel's
# own report in /tmp/vfio-regions (check_vfio_regions), except edu_driver_pci (edu unbound).

VMNT=/run/devfd-vfio

# Stops the server a failed check may have left running (a held group blocks the next ones,
# and unbinding waits for it).
stop_serve() {
  if [ -n "${SERVE_PID:-}" ] && kill -0 "$SERVE_PID" 2>/dev/null; then
    kill -INT "$SERVE_PID"
    wait "$SERVE_PID" 2>/dev/null
  fi
  SERVE_PID=
}

# The device file of the first device under a mount.
device_file() {
  for f in "$1"/*; do
    case "$f" in *.r[0-9]*) ;; *) echo "$f"; return ;; esac
  done
}

# (index size offset) of every present region, and (index count) of every irq, from the
# report of vfio-regions or of `devfd info --vfio`.
kernel_facts() {
  awk '$1 == "region" && $3 == "flags" { print "region", $2, $6, $8 }
       $1 == "irq" && $3 == "flags" { print "irq", $2, $NF }' "$1"
}
devfd_facts() {
  awk '$1 == "region" && $3 == "size" { print "region", $2, $4, $6 }
       $1 == "irq" && $3 == "count" { print "irq", $2, $4 }' "$1"
}

check_info_vfio() {
  devfd info --vfio "$BDF" >/tmp/info-vfio 2>&1 || { sed 's/^/  /' /tmp/info-vfio; no "devfd info --vfio failed"; return 1; }
  sed 's/^/  /' /tmp/info-vfio
  kernel_facts /tmp/vfio-regions >/tmp/facts-kernel
  devfd_facts /tmp/info-vfio >/tmp/facts-devfd
  [ -s /tmp/facts-kernel ] || no "no facts from vfio-regions" || return 1
  if ! diff /tmp/facts-kernel /tmp/facts-devfd >/tmp/facts-diff; then
    sed 's/^/  diff: /' /tmp/facts-diff
    no "devfd info --vfio disagrees with what the kernel reported to vfio-regions"
    return 1
  fi
  grep -q "region 8 * absent" /tmp/info-vfio || no "region 8 (EINVAL) not reported absent" || return 1
  echo "  $(wc -l </tmp/facts-kernel) facts agree with vfio-regions"
}

check_serve_vfio() {
  stop_serve
  start_serve "$VMNT" --vfio "$BDF" --dma 1M || return 1
  VFILE=$(device_file "$VMNT")
  devfd info "$VFILE" >/tmp/vinfo || no "devfd info $VFILE failed" || return 1
  sed 's/^/  /' /tmp/vinfo
  for want in "bar0 mem32" "1 MiB" "config" "dma window" "intx" "msi" "req"; do
    grep -q "$want" /tmp/vinfo || no "the description lacks '$want'" || return 1
  done
  expect_eq "bar0+0 through the device file" "$(devfd read "$VFILE" bar0 0)" 0x010000ed
}

check_edu_driver_vfio() {
  [ -n "${VFILE:-}" ] || no "no VFIO device file (serve_vfio failed)" || return 1
  edu-driver "$VFILE" >/tmp/edu-driver 2>&1
  rc=$?
  sed 's/^/  /' /tmp/edu-driver
  expect_eq "edu-driver exit" "$rc" 0 || return 1
  for want in "id" "liveness" "factorial (polled)" "hostile accesses get SPEC errnos" \
    "factorial with INTx" "DMA round trip with INTx" \
    "factorial with MSI" "DMA round trip with MSI"; do
    grep -qx "PASS $want" /tmp/edu-driver || no "no 'PASS $want'" || return 1
  done
}

check_edu_c_vfio() {
  # The C driver (examples/c/edu.c, static against libdevfd), unchanged from the host run.
  [ -n "${VFILE:-}" ] || no "no VFIO device file" || return 1
  edu-c "$VFILE" >/tmp/edu-c 2>&1
  rc=$?
  sed 's/^/  /' /tmp/edu-c
  expect_eq "edu-c exit" "$rc" 0 || return 1
  for want in "id: 0x010000ed" "factorial(10) = 3628800" "dma: 1024 bytes to bus" "edu: OK"; do
    grep -q "$want" /tmp/edu-c || no "no '$want'" || return 1
  done
}

check_vfio_mask_unmask() {
  [ -n "${VFILE:-}" ] || no "no VFIO device file" || return 1
  # A clean slate: nothing raised at the device, nothing unacknowledged at the device file.
  devfd write "$VFILE" bar0 0x64 0xffffffff
  devfd irq unmask "$VFILE" intx
  devfd irq wait "$VFILE" intx --timeout 100 >/dev/null 2>&1
  devfd irq mask "$VFILE" intx || no "irq mask failed" || return 1
  devfd write "$VFILE" bar0 0x60 1 || no "raise failed" || return 1
  if devfd irq wait "$VFILE" intx --timeout 300 >/tmp/irq 2>&1; then
    no "an event arrived while INTx was masked: $(cat /tmp/irq)"
    return 1
  fi
  devfd irq unmask "$VFILE" intx || no "irq unmask failed" || return 1
  devfd irq wait "$VFILE" intx --timeout 3000 >/tmp/irq 2>&1 || no "the held event did not arrive on unmask" || return 1
  sed 's/^/  /' /tmp/irq
  devfd write "$VFILE" bar0 0x64 1 || return 1
  devfd irq unmask "$VFILE" intx || return 1
  echo "  masked: no event; unmasked: the held event arrived"
}

check_vfio_hostile() {
  # Raw preads and pwrites through the device file, each answered with SPEC's errno
  # (edu-driver's "hostile" check; run above as part of edu_driver_vfio, shown here alone).
  grep -qx "PASS hostile accesses get SPEC errnos" /tmp/edu-driver ||
    no "edu-driver's hostile-access check did not pass" || return 1
  expect_eq "bar0+0 still" "$(devfd read "$VFILE" bar0 0)" 0x010000ed
}

check_vfio_sigkill_releases_group() {
  [ -n "${SERVE_PID:-}" ] || no "no server" || return 1
  kill -KILL "$SERVE_PID"
  wait "$SERVE_PID" 2>/dev/null
  n=0
  while vm_mounted "$VMNT"; do
    n=$((n + 1)); [ "$n" -le 50 ] || no "$VMNT still mounted" || return 1; sleep 0.1
  done
  start_serve "$VMNT" --vfio "$BDF" --dma 1M || no "a second serve --vfio after SIGKILL failed" || return 1
  VFILE=$(device_file "$VMNT")
  expect_eq "bar0+0 after restart" "$(devfd read "$VFILE" bar0 0)" 0x010000ed || return 1
  edu-driver "$VFILE" >/tmp/edu-driver2 2>&1 || { sed 's/^/  /' /tmp/edu-driver2; stop_serve; no "edu-driver after restart"; return 1; }
  stop_serve
  echo "  the group was released by the killed server; the new one serves and DMAs"
}

check_vfio_bench() {
  stop_serve
  vfio-bench "$BDF" >/tmp/bench 2>&1
  rc=$?
  sed 's/^/  /' /tmp/bench
  expect_eq "vfio-bench exit" "$rc" 0
}

check_edu_driver_pci() {
  # Device (c): the real edu from sysfs, no driver bound: no interrupts or DMA there.
  stop_serve
  start_serve /run/devfd-pci --pci "$BDF" --allow-bar-access || return 1
  f=$(device_file /run/devfd-pci)
  edu-driver "$f" --no-irq >/tmp/edu-driver-pci 2>&1
  rc=$?
  stop_serve
  sed 's/^/  /' /tmp/edu-driver-pci
  expect_eq "edu-driver exit" "$rc" 0 || return 1
  for want in "id" "liveness" "factorial (polled)" "hostile accesses get SPEC errnos"; do
    grep -qx "PASS $want" /tmp/edu-driver-pci || no "no 'PASS $want'" || return 1
  done
  grep -q "^SKIP factorial with INTx: --no-irq" /tmp/edu-driver-pci || no "INTx check not skipped with a reason"
}
