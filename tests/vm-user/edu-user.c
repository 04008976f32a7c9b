/* An edu (1234:11e8) driver in user space, for tests/vm-user/run.sh: everything through sysfs
 * (config, resource, resource0) and uio, no VFIO, so it runs against any edu the guest's
 * kernel sees: QEMU's own, or one a vfio-user server emulates behind QEMU's vfio-user-pci.
 *
 *   edu-user config BDF          config space, printed like `lspci -nxxx -s BDF`; checks the
 *                                IDs, class, BAR0 (32-bit memory, 1 MiB), INTx pin, MSI cap
 *   edu-user bar0 BDF            BAR0 through resource0 (mmap): ID register, liveness,
 *                                factorial (polling the status register)
 *   edu-user uio BDF /dev/uioN   edu bound to uio_pci_generic: INTx from the factorial (status
 *                                bit 0x80) and from the raise register, acknowledged at 0x64,
 *                                re-enabled (write 1 to /dev/uioN, or with uio_pci_generic,
 *                                which has no irqcontrol, clearing command bit 10 through
 *                                config); the event count advances one by one
 *   edu-user dma BDF [/dev/uioN] a DMA round trip RAM -> edu buffer -> RAM through a locked page
 *                                below 256 MiB (pagemap), bus mastering on; with /dev/uioN each
 *                                transfer ends with an interrupt, else cmd bit 0 is polled
 *
 * Prints what it sees, one fact a line ("FAIL: ..." for a failed check); exit 0 when every
 * check passed, 1 otherwise, 2 on bad usage. Needs root (config beyond 64 bytes, pagemap). */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* edu's registers (QEMU docs/specs/edu.rst). */
enum {
  EDU_ID = 0x00,       /* 0x010000ed: major 1, minor 0, 0xed */
  EDU_LIVENESS = 0x04, /* reads back the complement of what was written */
  EDU_FACT = 0x08,     /* write n, read n! once status bit 0 clears */
  EDU_STATUS = 0x20,   /* bit 0 computing (RO), bit 7 raise an interrupt after a factorial */
  EDU_IRQ_STATUS = 0x24,
  EDU_IRQ_RAISE = 0x60,
  EDU_IRQ_ACK = 0x64,
  EDU_DMA_SRC = 0x80,
  EDU_DMA_DST = 0x88,
  EDU_DMA_COUNT = 0x90,
  EDU_DMA_CMD = 0x98, /* bit 0 start/busy, bit 1 direction (0 RAM -> edu, 1 edu -> RAM), bit 2 irq */
};
enum { STATUS_COMPUTING = 0x01, STATUS_IRQFACT = 0x80 };
enum { IRQ_FACT = 0x001, IRQ_DMA = 0x100, IRQ_SOFT = 0x00010000 };
enum { DMA_START = 1, DMA_TO_RAM = 2, DMA_IRQ = 4 };
#define EDU_DMA_BUF 0x40000u /* edu's 4 KiB DMA buffer, in its own address space */
#define EDU_DMA_MASK ((1ull << 28) - 1) /* edu masks DMA addresses to 28 bits */
#define EDU_BAR0_SIZE 0x100000ull
#define PAGE 4096u

static const char *bdf;
static int failures;

static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vprintf(fmt, ap);
  va_end(ap);
  putchar('\n');
  fflush(stdout);
}

/* A check: prints "FAIL: ..." and counts it when it does not hold. */
static int check(int ok, const char *fmt, ...) {
  if (!ok) {
    va_list ap;
    va_start(ap, fmt);
    printf("FAIL: ");
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    failures++;
  }
  return ok;
}

static const char *sysfs(const char *file) {
  static char buf[4][256];
  static int n;
  char *p = buf[n++ & 3];
  snprintf(p, sizeof buf[0], "/sys/bus/pci/devices/%s/%s", bdf, file);
  return p;
}

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static void nap_us(long us) {
  struct timespec t = {us / 1000000, (us % 1000000) * 1000};
  nanosleep(&t, NULL);
}

/* ---- config space, through sysfs `config` ---- */

static uint8_t cfg[4096];
static ssize_t cfg_len;

static int read_config(void) {
  int fd = open(sysfs("config"), O_RDONLY);
  if (fd < 0) {
    check(0, "open %s: %s", sysfs("config"), strerror(errno));
    return 0;
  }
  cfg_len = pread(fd, cfg, sizeof cfg, 0);
  close(fd);
  if (cfg_len < 64) {
    check(0, "read %s: %zd bytes (%s)", sysfs("config"), cfg_len, cfg_len < 0 ? strerror(errno) : "short");
    return 0;
  }
  return 1;
}
static uint8_t c8(unsigned o) { return cfg[o]; }
static uint16_t c16(unsigned o) { return cfg[o] | cfg[o + 1] << 8; }
static uint32_t c32(unsigned o) { return c16(o) | (uint32_t)c16(o + 2) << 16; }

static int cfg_read16(unsigned off, uint16_t *v) {
  int fd = open(sysfs("config"), O_RDONLY);
  int ok = fd >= 0 && pread(fd, v, 2, off) == 2;
  if (fd >= 0) close(fd);
  return ok;
}
static int cfg_write16(unsigned off, uint16_t v) {
  int fd = open(sysfs("config"), O_WRONLY);
  int ok = fd >= 0 && pwrite(fd, &v, 2, off) == 2;
  if (fd >= 0) close(fd);
  return ok;
}

/* The slot as lspci prints it: no domain when it is 0000. */
static const char *slot_name(void) {
  return strncmp(bdf, "0000:", 5) == 0 ? bdf + 5 : bdf;
}

/* Offset of capability ID in the standard list, 0 if absent (walked bounded, in range). */
static unsigned find_cap(uint8_t id) {
  if (!(c16(0x06) & 0x10) || cfg_len < 256) return 0;
  unsigned off = c8(0x34) & 0xfc;
  for (int n = 0; off >= 0x40 && n < 48; n++) {
    if (c8(off) == id) return off;
    off = c8(off + 1) & 0xfc;
  }
  return 0;
}

static int cmd_config(void) {
  if (!read_config()) return 1;
  /* `lspci -nxxx -s BDF`: slot, class, vendor:device, revision, then the bytes 16 a line. */
  printf("%s %04x: %04x:%04x", slot_name(), c16(0x0a), c16(0x00), c16(0x02));
  if (c8(0x08)) printf(" (rev %02x)", c8(0x08));
  putchar('\n');
  ssize_t dump = cfg_len < 256 ? cfg_len : 256;
  for (ssize_t i = 0; i < dump; i++) {
    if (!(i & 15)) printf("%02zx:", i);
    printf(" %02x", cfg[i]);
    if ((i & 15) == 15) putchar('\n');
  }
  putchar('\n');
  say("config: %zd bytes readable", cfg_len);

  check(c16(0x00) == 0x1234, "vendor 0x%04x, want 0x1234", c16(0x00));
  check(c16(0x02) == 0x11e8, "device 0x%04x, want 0x11e8", c16(0x02));
  check(c16(0x0a) == 0x00ff && c8(0x09) == 0, "class %04x prog-if %02x, want 00ff (unclassified) prog-if 00",
        c16(0x0a), c8(0x09));
  check((c8(0x0e) & 0x7f) == 0, "header type 0x%02x, want 0 (a normal function)", c8(0x0e));
  say("subsystem %04x:%04x, revision 0x%02x, header type 0x%02x", c16(0x2c), c16(0x2e), c8(0x08), c8(0x0e));

  /* BAR0: a 32-bit non-prefetchable memory BAR of 1 MiB; the other BARs unused. */
  uint32_t bar0 = c32(0x10);
  check((bar0 & 0xf) == 0, "BAR0 0x%08x: want a 32-bit non-prefetchable memory BAR (low bits 0)", bar0);
  for (unsigned b = 1; b < 6; b++) check(c32(0x10 + 4 * b) == 0, "BAR%u is 0x%08x, want unused (0)", b, c32(0x10 + 4 * b));
  FILE *f = fopen(sysfs("resource"), "r");
  unsigned long long start = 0, end = 0, flags = 0;
  if (!check(f && fscanf(f, "%llx %llx %llx", &start, &end, &flags) == 3, "no BAR0 line in %s", sysfs("resource")))
    return 1;
  fclose(f);
  unsigned long long size = end - start + 1;
  say("BAR0 at 0x%llx, size 0x%llx (%llu KiB), flags 0x%llx", start, size, size >> 10, flags);
  check(start != 0 && size == EDU_BAR0_SIZE, "BAR0 size 0x%llx (start 0x%llx), want 0x%llx (1 MiB)", size, start,
        EDU_BAR0_SIZE);
  check((bar0 & ~0xfu) == start, "BAR0 register 0x%08x and sysfs start 0x%llx differ", bar0, start);
  struct stat st;
  int r = stat(sysfs("resource0"), &st);
  if (check(r == 0, "stat %s: %s", sysfs("resource0"), strerror(errno)))
    check((unsigned long long)st.st_size == EDU_BAR0_SIZE, "resource0 is %lld bytes, want 1 MiB", (long long)st.st_size);

  /* INTx: pin A (uio_pci_generic needs it). */
  check(c8(0x3d) == 1, "interrupt pin %u, want 1 (INTA)", c8(0x3d));
  say("interrupt pin %u (INT%c), line %u", c8(0x3d), c8(0x3d) ? 'A' + c8(0x3d) - 1 : '-', c8(0x3c));

  /* MSI: QEMU's edu has one, 64-bit, 1 vector, no per-vector masking. */
  unsigned msi = find_cap(0x05);
  if (check(msi != 0, "no MSI capability (id 05) in the capability list (status 0x%04x, pointer 0x%02x)", c16(0x06),
            c8(0x34))) {
    uint16_t ctl = c16(msi + 2);
    say("MSI capability at 0x%02x: control 0x%04x (%s, %u vector(s) capable, %s)", msi, ctl,
        ctl & 0x80 ? "64-bit" : "32-bit", 1u << ((ctl >> 1) & 7), ctl & 1 ? "enabled" : "disabled");
    check(ctl & 0x80, "MSI capability is 32-bit, edu's is 64-bit");
  }
  unsigned off = (c16(0x06) & 0x10) ? c8(0x34) & 0xfc : 0;
  printf("capabilities:");
  for (int n = 0; off >= 0x40 && n < 48; n++, off = c8(off + 1) & 0xfc) printf(" [%02x] id %02x", off, c8(off));
  printf("%s\n", (c16(0x06) & 0x10) ? "" : " none");
  return failures != 0;
}

/* ---- BAR0, through sysfs `resource0` ---- */

static volatile uint8_t *bar;

static int map_bar0(void) {
  int fd = open(sysfs("resource0"), O_RDWR | O_SYNC);
  if (fd < 0) {
    check(0, "open %s: %s", sysfs("resource0"), strerror(errno));
    return 0;
  }
  void *p = mmap(NULL, EDU_BAR0_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {
    check(0, "mmap %s: %s", sysfs("resource0"), strerror(errno));
    return 0;
  }
  bar = p;
  return 1;
}
static uint32_t r32(unsigned o) { return *(volatile uint32_t *)(bar + o); }
static void w32(unsigned o, uint32_t v) { *(volatile uint32_t *)(bar + o) = v; }
static uint64_t r64(unsigned o) { return *(volatile uint64_t *)(bar + o); }
static void w64(unsigned o, uint64_t v) { *(volatile uint64_t *)(bar + o) = v; }

/* Waits up to S seconds for (REG & MASK) == 0; returns the seconds it took, -1 on timeout. */
static double wait_clear(unsigned reg, uint32_t mask, double s) {
  double t0 = now();
  while (r32(reg) & mask) {
    if (now() - t0 > s) return -1;
    nap_us(200);
  }
  return now() - t0;
}

static int factorial(uint32_t n, uint32_t want) {
  w32(EDU_FACT, n);
  double t = wait_clear(EDU_STATUS, STATUS_COMPUTING, 10);
  if (!check(t >= 0, "factorial %u: status 0x%08x still computing after 10 s", n, r32(EDU_STATUS))) return 0;
  uint32_t got = r32(EDU_FACT);
  if (!check(got == want, "factorial %u: 0x%08x read %u, want %u", n, EDU_FACT, got, want)) return 0;
  say("factorial: wrote %u to 0x08, status bit 0 clear after %.1f ms, 0x08 reads %u", n, t * 1e3, got);
  return 1;
}

static int cmd_bar0(void) {
  if (!map_bar0()) return 1;
  uint32_t id = r32(EDU_ID);
  say("0x00 ID 0x%08x (edu %u.%u)", id, id >> 24, (id >> 16) & 0xff);
  check(id == 0x010000ed, "ID register 0x%08x, want 0x010000ed", id);
  static const uint32_t pats[] = {0x12345678, 0x00000000, 0xffffffff, 0xa5a5a5a5};
  for (unsigned i = 0; i < sizeof pats / sizeof pats[0]; i++) {
    w32(EDU_LIVENESS, pats[i]);
    uint32_t got = r32(EDU_LIVENESS);
    check(got == ~pats[i], "liveness: wrote 0x%08x, read 0x%08x, want 0x%08x", pats[i], got, ~pats[i]);
  }
  say("liveness: 0x04 reads back the complement of 0x12345678, 0, 0xffffffff, 0xa5a5a5a5");
  uint32_t st = r32(EDU_STATUS);
  check(!(st & STATUS_COMPUTING), "status 0x%08x: computing before anything was started", st);
  factorial(5, 120);
  factorial(12, 479001600);
  return failures != 0;
}

/* ---- interrupts through uio (edu bound to uio_pci_generic) ---- */

static int uio_fd = -1;
static char uio_event[128];
static const char *unmask_how = "";

/* Unmasks INTx again after an interrupt: write 1 to /dev/uioN where the uio driver has an
 * irqcontrol; uio_pci_generic has none (ENOSYS) and masks by setting INTx disable (command
 * bit 10) in its handler, so there the bit is cleared through the config file, as the kernel's
 * uio howto does (the command register's high byte only, offset 5). */
static int uio_unmask(void) {
  uint32_t on = 1;
  if (write(uio_fd, &on, 4) == 4) {
    unmask_how = "write 1 to /dev/uio";
    return 1;
  }
  if (errno != ENOSYS) return check(0, "write 1 to /dev/uio: %s", strerror(errno));
  int fd = open(sysfs("config"), O_RDWR);
  uint8_t hi = 0;
  int ok = fd >= 0 && pread(fd, &hi, 1, 5) == 1;
  if (ok && (hi & 0x04)) {
    hi &= ~0x04;
    ok = pwrite(fd, &hi, 1, 5) == 1;
  }
  int err = errno;
  if (fd >= 0) close(fd);
  unmask_how = "write 1 to /dev/uio: ENOSYS (no irqcontrol), so command bit 10 cleared through config";
  return check(ok, "clearing INTx disable (command bit 10) through %s: %s", sysfs("config"), strerror(err));
}

static long uio_count(void) {
  FILE *f = fopen(uio_event, "r");
  long n = -1;
  if (f) {
    if (fscanf(f, "%ld", &n) != 1) n = -1;
    fclose(f);
  }
  return n;
}

static int open_uio(const char *dev) {
  const char *name = strrchr(dev, '/');
  snprintf(uio_event, sizeof uio_event, "/sys/class/uio/%s/event", name ? name + 1 : dev);
  uio_fd = open(dev, O_RDWR);
  if (uio_fd < 0) {
    check(0, "open %s: %s", dev, strerror(errno));
    return 0;
  }
  return uio_unmask();
}

/* Waits for one interrupt on /dev/uioN: acknowledges it at edu (0x64, what 0x24 says) and
 * unmasks it again; returns the IRQ status it saw, 0 on timeout or error. */
static uint32_t uio_wait(const char *what, uint32_t want, long *count) {
  struct pollfd p = {.fd = uio_fd, .events = POLLIN};
  double t0 = now();
  int r = poll(&p, 1, 10000), err = errno;
  if (r <= 0) {
    uint16_t status = 0, command = 0;
    cfg_read16(0x06, &status);
    cfg_read16(0x04, &command);
    check(0, "%s: no interrupt on /dev/uio within 10 s (%s; edu irq status 0x%08x, PCI status 0x%04x "
             "[interrupt %s], command 0x%04x [INTx %s])",
          what, r < 0 ? strerror(err) : "poll timed out", r32(EDU_IRQ_STATUS), status,
          status & 0x08 ? "pending" : "not pending", command, command & 0x400 ? "disabled" : "enabled");
    return 0;
  }
  uint32_t n = 0;
  ssize_t got = read(uio_fd, &n, 4);
  if (!check(got == 4, "%s: read /dev/uio: %s", what, strerror(errno))) return 0;
  double dt = now() - t0;
  uint32_t irq = r32(EDU_IRQ_STATUS);
  check((irq & want) == want, "%s: irq status 0x%08x lacks 0x%08x", what, irq, want);
  w32(EDU_IRQ_ACK, irq);
  uint32_t after = r32(EDU_IRQ_STATUS);
  check(after == 0, "%s: irq status 0x%08x after acknowledging 0x%08x at 0x64", what, after, irq);
  uio_unmask();
  say("%s: interrupt after %.1f ms, uio count %u, irq status 0x%08x acknowledged (then 0x%08x), re-enabled", what,
      dt * 1e3, n, irq, after);
  if (count) *count = n;
  return irq;
}

static int cmd_uio(const char *dev) {
  if (!map_bar0() || !open_uio(dev)) return 1;
  w32(EDU_IRQ_ACK, r32(EDU_IRQ_STATUS)); /* nothing left over */
  long c0 = uio_count(), c1 = -1, c2 = -1, c3 = -1;
  say("%s: event count %ld before", dev, c0);
  check(c0 >= 0, "cannot read %s", uio_event);

  w32(EDU_STATUS, STATUS_IRQFACT);
  check(r32(EDU_STATUS) & STATUS_IRQFACT, "status bit 0x80 (irq after factorial) does not stick: 0x%08x",
        r32(EDU_STATUS));
  w32(EDU_FACT, 5);
  if (uio_wait("factorial 5 with status 0x80", IRQ_FACT, &c1))
    check(r32(EDU_FACT) == 120, "factorial 5 = %u after its interrupt, want 120", r32(EDU_FACT));
  if (!failures) {
    w32(EDU_IRQ_RAISE, IRQ_SOFT); /* raise by hand: 0x60 */
    uio_wait("raise 0x00010000 at 0x60", IRQ_SOFT, &c2);
  }
  if (!failures) {
    w32(EDU_FACT, 6);
    if (uio_wait("factorial 6 with status 0x80", IRQ_FACT, &c3))
      check(r32(EDU_FACT) == 720, "factorial 6 = %u after its interrupt, want 720", r32(EDU_FACT));
  }
  w32(EDU_STATUS, 0);
  long c = uio_count();
  say("uio event count: %ld before, then %ld, %ld, %ld; %s now %ld", c0, c1, c2, c3, uio_event, c);
  say("re-enabling: %s", unmask_how);
  if (!failures) check(c1 > c0 && c2 > c1 && c3 > c2 && c == c3, "the event count did not advance one by one");
  return failures != 0;
}

/* ---- DMA ---- */

/* The guest-physical address of the page at V, from /proc/self/pagemap (PFN: bits 0-54). */
static uint64_t phys_of(int pm, void *v) {
  uint64_t e = 0;
  off_t off = (off_t)((uintptr_t)v / PAGE) * 8;
  if (pread(pm, &e, 8, off) != 8) return 0;
  if (!(e & (1ull << 63))) return 0; /* not present */
  uint64_t pfn = e & ((1ull << 55) - 1);
  return pfn * PAGE;
}

/* Two locked pages below edu's 28-bit DMA limit: locks chunks of memory until it has them. */
static int dma_pages(void **a, uint64_t *pa, void **b, uint64_t *pb) {
  int pm = open("/proc/self/pagemap", O_RDONLY);
  if (pm < 0) return check(0, "open /proc/self/pagemap: %s", strerror(errno));
  enum { CHUNK = 4 << 20, CHUNKS = 64 };
  int found = 0, scanned = 0;
  for (int c = 0; c < CHUNKS && found < 2; c++) {
    uint8_t *m = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) break;
    if (mlock(m, CHUNK)) {
      close(pm);
      return check(0, "mlock %d MiB: %s", CHUNK >> 20, strerror(errno));
    }
    memset(m, 0x11, CHUNK); /* written: real pages, not the zero page */
    for (unsigned off = 0; off < CHUNK && found < 2; off += PAGE, scanned++) {
      uint64_t p = phys_of(pm, m + off);
      if (p == 0 && c == 0 && off == 0) {
        close(pm);
        return check(0, "/proc/self/pagemap gives no PFN (not root? it needs CAP_SYS_ADMIN)");
      }
      if (p != 0 && p + PAGE - 1 <= EDU_DMA_MASK) {
        if (found == 0) *a = m + off, *pa = p;
        else *b = m + off, *pb = p;
        found++;
      }
    }
    /* The rest of the chunk stays locked and mapped, so the next chunk gets other pages. */
  }
  close(pm);
  say("DMA pages: %d found below 256 MiB among %d locked pages", found, scanned);
  return check(found == 2, "no two locked pages below 256 MiB (edu masks DMA addresses to 28 bits) in %d MiB",
               CHUNKS * (CHUNK >> 20));
}

static int dma_run(const char *what, uint64_t src, uint64_t dst, uint32_t cmd) {
  w64(EDU_DMA_SRC, src);
  w64(EDU_DMA_DST, dst);
  w64(EDU_DMA_COUNT, PAGE);
  uint64_t s = r64(EDU_DMA_SRC), d = r64(EDU_DMA_DST), n = r64(EDU_DMA_COUNT);
  check(s == src && d == dst && n == PAGE, "%s: DMA registers read back src 0x%" PRIx64 " dst 0x%" PRIx64
        " count 0x%" PRIx64 ", want 0x%" PRIx64 " 0x%" PRIx64 " 0x%x", what, s, d, n, src, dst, PAGE);
  double t0 = now();
  w32(EDU_DMA_CMD, DMA_START | cmd);
  if (uio_fd >= 0 && (cmd & DMA_IRQ) && !uio_wait(what, IRQ_DMA, NULL)) return 0;
  double t = wait_clear(EDU_DMA_CMD, DMA_START, 10);
  if (!check(t >= 0, "%s: cmd 0x%08x still busy after 10 s", what, r32(EDU_DMA_CMD))) return 0;
  say("%s: src 0x%" PRIx64 " dst 0x%" PRIx64 " count 0x%x cmd 0x%x, done after %.1f ms%s", what, src, dst, PAGE,
      DMA_START | cmd, (now() - t0) * 1e3, cmd & DMA_IRQ ? " (interrupt)" : " (cmd bit 0 polled)");
  return 1;
}

static int cmd_dma(const char *dev) {
  if (!map_bar0()) return 1;
  if (dev && !open_uio(dev)) return 1;
  void *va = NULL, *vb = NULL;
  uint64_t pa = 0, pb = 0;
  if (!dma_pages(&va, &pa, &vb, &pb)) return 1;
  say("buffer A at %p = guest-physical 0x%" PRIx64 ", buffer B at %p = 0x%" PRIx64, va, pa, vb, pb);

  uint16_t cmd0 = 0;
  if (!check(cfg_read16(0x04, &cmd0), "read the command register through %s", sysfs("config"))) return 1;
  uint16_t cmd1 = cmd0 | 0x6; /* memory space, bus master */
  int wrote = cfg_write16(0x04, cmd1);
  if (!check(wrote, "write the command register through %s: %s", sysfs("config"), strerror(errno))) return 1;
  uint16_t got = 0;
  cfg_read16(0x04, &got);
  check((got & 0x6) == 0x6, "command register 0x%04x after writing 0x%04x: bus master does not stick", got, cmd1);
  say("command register 0x%04x -> 0x%04x (bus master on)", cmd0, got);

  uint32_t *a = va, *b = vb;
  for (unsigned i = 0; i < PAGE / 4; i++) a[i] = 0x9e3779b9u * (i + 1) ^ (uint32_t)pa;
  memset(b, 0, PAGE);
  uint32_t irq = dev ? DMA_IRQ : 0;
  if (dma_run("DMA RAM -> edu", pa, EDU_DMA_BUF, irq) && dma_run("DMA edu -> RAM", EDU_DMA_BUF, pb, DMA_TO_RAM | irq)) {
    unsigned bad = PAGE / 4;
    for (unsigned i = 0; i < PAGE / 4; i++)
      if (a[i] != b[i]) {
        bad = i;
        break;
      }
    if (check(bad == PAGE / 4, "round trip: word %u is 0x%08x, want 0x%08x (B starts %08x %08x)", bad, b[bad], a[bad],
              b[0], b[1]))
      say("round trip: the 4096 bytes came back identical (first word 0x%08x)", b[0]);
  }
  cfg_write16(0x04, cmd0);
  return failures != 0;
}

int main(int argc, char **argv) {
  if (argc < 3) goto usage;
  bdf = argv[2];
  const char *what = argv[1];
  if (!strcmp(what, "config") && argc == 3) return cmd_config();
  if (!strcmp(what, "bar0") && argc == 3) return cmd_bar0();
  if (!strcmp(what, "uio") && argc == 4) return cmd_uio(argv[3]);
  if (!strcmp(what, "dma") && (argc == 3 || argc == 4)) return cmd_dma(argc == 4 ? argv[3] : NULL);
usage:
  fprintf(stderr, "usage: edu-user config|bar0 BDF | edu-user uio BDF /dev/uioN | edu-user dma BDF [/dev/uioN]\n");
  return 2;
}
