/* What the kernel's VFIO reports for one PCI function, one fact a line, for tests/vm/run.sh
 * to compare with ../shared/TESTBEDS.md §3 (a stand-in until `devfd info --vfio` exists).
 *
 *   vfio-regions GROUP BDF      e.g. vfio-regions /dev/vfio/2 0000:00:02.0
 *
 * Opens the device through the group/container API (API version, TYPE1v2, group viable,
 * SET_CONTAINER, SET_IOMMU, GET_DEVICE_FD), then prints DEVICE_GET_INFO, every region's and
 * interrupt's info (EINVAL for an index: "absent"), and BAR0's ID register and its
 * liveness-check register (BAR0+4 reads back the complement of what was written).
 * Exit 0 when every call that must work worked, 1 otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <linux/vfio.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

static int fail(const char *what) {
  printf("error %s: %s\n", what, strerror(errno));
  return 1;
}

static void flag(char *buf, size_t len, int on, const char *name) {
  if (!on) return;
  if (buf[0]) strncat(buf, ",", len - strlen(buf) - 1);
  strncat(buf, name, len - strlen(buf) - 1);
}

/* The capability ids in a region info's chain, walked defensively (bounded, in range). */
static void region_caps(const struct vfio_region_info *info, char *buf, size_t len) {
  uint32_t off = info->cap_offset;
  buf[0] = 0;
  for (int n = 0; off && n < 16; n++) {
    if (off < sizeof(*info) || off > info->argsz - sizeof(struct vfio_info_cap_header)) {
      flag(buf, len, 1, "bad-offset");
      return;
    }
    const struct vfio_info_cap_header *h = (const void *)((const char *)info + off);
    char id[32];
    switch (h->id) {
      case VFIO_REGION_INFO_CAP_SPARSE_MMAP: snprintf(id, sizeof id, "sparse-mmap"); break;
      case VFIO_REGION_INFO_CAP_TYPE: snprintf(id, sizeof id, "type"); break;
      case VFIO_REGION_INFO_CAP_MSIX_MAPPABLE: snprintf(id, sizeof id, "msix-mappable"); break;
      default: snprintf(id, sizeof id, "cap%u", h->id);
    }
    flag(buf, len, 1, id);
    off = h->next;
  }
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: vfio-regions GROUP BDF\n");
    return 2;
  }
  int container = open("/dev/vfio/vfio", O_RDWR);
  if (container < 0) return fail("open /dev/vfio/vfio");
  int api = ioctl(container, VFIO_GET_API_VERSION);
  int type1v2 = ioctl(container, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU);
  printf("api %d type1v2 %d\n", api, type1v2);
  if (api != VFIO_API_VERSION || type1v2 != 1) return 1;

  int group = open(argv[1], O_RDWR);
  if (group < 0) return fail("open group");
  struct vfio_group_status status = {.argsz = sizeof status};
  if (ioctl(group, VFIO_GROUP_GET_STATUS, &status)) return fail("GROUP_GET_STATUS");
  printf("group %s\n", (status.flags & VFIO_GROUP_FLAGS_VIABLE) ? "viable" : "not-viable");
  if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container)) return fail("GROUP_SET_CONTAINER");
  if (ioctl(container, VFIO_SET_IOMMU, VFIO_TYPE1v2_IOMMU)) return fail("SET_IOMMU");
  int dev = ioctl(group, VFIO_GROUP_GET_DEVICE_FD, argv[2]);
  if (dev < 0) return fail("GROUP_GET_DEVICE_FD");

  struct vfio_device_info di = {.argsz = sizeof di};
  if (ioctl(dev, VFIO_DEVICE_GET_INFO, &di)) return fail("DEVICE_GET_INFO");
  char f[128] = "";
  flag(f, sizeof f, di.flags & VFIO_DEVICE_FLAGS_PCI, "pci");
  flag(f, sizeof f, di.flags & VFIO_DEVICE_FLAGS_RESET, "reset");
  printf("device flags %s regions %u irqs %u\n", f[0] ? f : "-", di.num_regions, di.num_irqs);

  uint64_t bar0_offset = 0;
  int bar0 = 0;
  for (uint32_t i = 0; i < di.num_regions; i++) {
    struct vfio_region_info *ri = calloc(1, sizeof *ri);
    ri->argsz = sizeof *ri;
    ri->index = i;
    if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, ri)) {
      if (errno == EINVAL) {
        printf("region %u EINVAL\n", i);
        free(ri);
        continue;
      }
      return fail("DEVICE_GET_REGION_INFO");
    }
    if (ri->argsz > sizeof *ri) { /* a capability chain: ask again with room for it */
      uint32_t need = ri->argsz;
      ri = realloc(ri, need);
      memset(ri, 0, need);
      ri->argsz = need;
      ri->index = i;
      if (ioctl(dev, VFIO_DEVICE_GET_REGION_INFO, ri)) return fail("DEVICE_GET_REGION_INFO (caps)");
    }
    f[0] = 0;
    flag(f, sizeof f, ri->flags & VFIO_REGION_INFO_FLAG_READ, "r");
    flag(f, sizeof f, ri->flags & VFIO_REGION_INFO_FLAG_WRITE, "w");
    flag(f, sizeof f, ri->flags & VFIO_REGION_INFO_FLAG_MMAP, "mmap");
    char caps[128] = "";
    if (ri->flags & VFIO_REGION_INFO_FLAG_CAPS) region_caps(ri, caps, sizeof caps);
    printf("region %u flags %s size 0x%llx offset 0x%llx caps %s\n", i, f[0] ? f : "-",
           (unsigned long long)ri->size, (unsigned long long)ri->offset, caps[0] ? caps : "-");
    if (i == VFIO_PCI_BAR0_REGION_INDEX && ri->size >= 8) {
      bar0 = 1;
      bar0_offset = ri->offset;
    }
    free(ri);
  }

  for (uint32_t i = 0; i < di.num_irqs; i++) {
    struct vfio_irq_info ii = {.argsz = sizeof ii, .index = i};
    if (ioctl(dev, VFIO_DEVICE_GET_IRQ_INFO, &ii)) {
      if (errno == EINVAL) {
        printf("irq %u EINVAL\n", i);
        continue;
      }
      return fail("DEVICE_GET_IRQ_INFO");
    }
    f[0] = 0;
    flag(f, sizeof f, ii.flags & VFIO_IRQ_INFO_EVENTFD, "eventfd");
    flag(f, sizeof f, ii.flags & VFIO_IRQ_INFO_MASKABLE, "maskable");
    flag(f, sizeof f, ii.flags & VFIO_IRQ_INFO_AUTOMASKED, "automasked");
    flag(f, sizeof f, ii.flags & VFIO_IRQ_INFO_NORESIZE, "noresize");
    printf("irq %u flags %s count %u\n", i, f[0] ? f : "-", ii.count);
  }

  if (bar0) {
    uint32_t id = 0, v = 0x12345678, back = 0;
    if (pread(dev, &id, 4, (off_t)bar0_offset) != 4) return fail("pread BAR0+0");
    printf("bar0+0 0x%08x\n", id);
    if (pwrite(dev, &v, 4, (off_t)bar0_offset + 4) != 4) return fail("pwrite BAR0+4");
    if (pread(dev, &back, 4, (off_t)bar0_offset + 4) != 4) return fail("pread BAR0+4");
    printf("bar0+4 wrote 0x%08x read 0x%08x\n", v, back);
  }
  close(dev);
  close(group);
  close(container);
  return 0;
}
