# Helpers for payloads of the devfd test VM: `. /lib/devfd-vm.sh` in /test/run.sh.
# shellcheck shell=sh
#
# /init exports DEVFD_VM_EDU (the edu's BDF, e.g. 0000:00:03.0, empty if absent) and
# DEVFD_VM_MODULES_FAILED (modules insmod refused). Every device starts with no driver.

# The sysfs directory of a PCI function.
vm_pci_dir() { echo "/sys/bus/pci/devices/$1"; }

# The driver bound to BDF, or nothing.
vm_driver() {
  if [ -e "/sys/bus/pci/devices/$1/driver" ]; then
    basename "$(readlink "/sys/bus/pci/devices/$1/driver")"
  fi
}

# Unbinds BDF from its driver (if any) and clears its driver_override.
vm_unbind() {
  _d=/sys/bus/pci/devices/$1
  [ -e "$_d/driver" ] && echo "$1" >"$_d/driver/unbind"
  echo >"$_d/driver_override"
  [ ! -e "$_d/driver" ]
}

# Binds BDF to vfio-pci and prints its group's device node, /dev/vfio/N.
vm_bind_vfio() {
  _d=/sys/bus/pci/devices/$1
  vm_unbind "$1" || return 1
  echo vfio-pci >"$_d/driver_override" || return 1
  echo "$1" >/sys/bus/pci/drivers_probe || return 1
  [ "$(vm_driver "$1")" = vfio-pci ] || { echo "vm_bind_vfio: $1 did not bind to vfio-pci" >&2; return 1; }
  _g=/dev/vfio/$(basename "$(readlink "$_d/iommu_group")")
  # devtmpfs creates the node asynchronously; give it a moment.
  for _i in 1 2 3 4 5 6 7 8 9 10; do
    [ -c "$_g" ] && break
    sleep 0.1
  done
  echo "$_g"
}

# Waits up to $2 seconds (default 10) for the path $1 to exist.
vm_wait_for() {
  _n=$(( ${2:-10} * 10 ))
  while [ "$_n" -gt 0 ]; do
    [ -e "$1" ] && return 0
    sleep 0.1
    _n=$((_n - 1))
  done
  return 1
}

# True while $1 is a mount point in /proc/mounts.
vm_mounted() { awk -v m="$1" '$2 == m { found = 1 } END { exit !found }' /proc/mounts; }
