/*
 * libdevfd's contract, checked from C89 against a live `devfd serve` (edu0, mem0, rtc0):
 * error codes and messages, NULL outs on failure, argsz, wide BAR numbers, access widths,
 * bulk accesses that fail with no effect, zero-length accesses, sparse areas, partial
 * mappings, opening from an fd, the interrupt status word. Run under valgrind by
 * scripts/test-c. Usage: abi MOUNT_DIR
 */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "devfd.h"

static int failures = 0;

#define EXPECT(cond) \
	do { \
		if (!(cond)) { \
			fprintf(stderr, "abi: %s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
			failures++; \
		} \
	} while (0)

static char path_buf[4096];

static const char *in_dir(const char *dir, const char *name)
{
	sprintf(path_buf, "%.4000s/%s", dir, name);
	return path_buf;
}

int main(int argc, char **argv)
{
	static const int codes[] = { EINVAL, ENOENT, ENXIO, EPERM, EIO, ETIMEDOUT, EBADMSG,
		ENOTCONN, ECONNABORTED, EACCES, EBADF, EISDIR, ENOTDIR, ENAMETOOLONG, ELOOP, ENODEV,
		EBUSY, EINTR, EAGAIN, ENOMEM, EMFILE, ENFILE };
	devfd_device *edu = NULL, *mem = NULL, *rtc = NULL, *dev = (devfd_device *)&failures;
	devfd_desc *desc = (devfd_desc *)&failures;
	const devfd_desc *d;
	devfd_resource r = DEVFD_RESOURCE_INIT;
	devfd_parse_error perr;
	uint32_t before, after, v32, status;
	uint8_t buf[16];
	uint64_t off, size, events;
	size_t done, i;
	void *addr;
	int fd, rc;

	if (argc != 2) {
		fprintf(stderr, "usage: abi MOUNT_DIR\n");
		return 2;
	}
	EXPECT(devfd_version() == DEVFD_VERSION);
#if DEVFD_VERSION < 0x000200 || DEVFD_BUS_PCI != 80
	EXPECT(!"version and bus macros usable in #if");
#endif

	/* Every code any call returns has its own message. */
	for (i = 0; i < sizeof codes / sizeof codes[0]; i++)
		EXPECT(strstr(devfd_strerror(-codes[i]), "unknown") == NULL);
	EXPECT(strstr(devfd_strerror(-ENOENT), "no such file") != NULL);
	EXPECT(strstr(devfd_strerror(-EISDIR), "directory") != NULL);

	/* Failed creations leave NULL; codes agree with the header. */
	EXPECT(devfd_open(in_dir(argv[1], "nonexistent"), &dev) == -ENOENT);
	EXPECT(dev == NULL);
	dev = (devfd_device *)&failures;
	EXPECT(devfd_open(argv[1], &dev) == -EISDIR);
	EXPECT(dev == NULL);
	EXPECT(devfd_desc_parse(NULL, 4, &desc, NULL) == -EINVAL);
	EXPECT(desc == NULL);
	desc = (devfd_desc *)&failures;
	memset(buf, 0x5a, sizeof buf);
	EXPECT(devfd_desc_parse(buf, sizeof buf, &desc, &perr) == -EBADMSG);
	EXPECT(desc == NULL);
	EXPECT(perr.message[0] != 0);

	EXPECT(devfd_open(in_dir(argv[1], "edu0"), &edu) == DEVFD_OK);
	EXPECT(devfd_open(in_dir(argv[1], "mem0"), &mem) == DEVFD_OK);
	EXPECT(devfd_open(in_dir(argv[1], "rtc0"), &rtc) == DEVFD_OK);
	if (!edu || !mem || !rtc)
		return 1;
	d = devfd_device_desc(edu);

	/* argsz: 0 is refused and fills nothing; the right size is filled and kept. */
	memset(&r, 0, sizeof r);
	EXPECT(devfd_desc_pci_bar(d, 0, &r) == -EINVAL);
	EXPECT(r.size == 0);
	r.argsz = sizeof r;
	EXPECT(devfd_desc_pci_bar(d, 0, &r) == DEVFD_OK);
	EXPECT(r.argsz == sizeof r && r.size == 0x100000);
	EXPECT((r.access_widths & (DEVFD_ACCESS_32 | DEVFD_ACCESS_64)) != 0);
	/* A wide BAR number is refused, not truncated to BAR 0. */
	EXPECT(devfd_desc_pci_bar(d, 256, &r) == -EINVAL);
	EXPECT(devfd_desc_pci_bar(d, 6, &r) == -EINVAL);
	EXPECT(devfd_desc_pci_bar(d, 1, &r) == -ENOENT);

	/* A bulk write that cannot be split into accepted widths has no effect. */
	EXPECT(devfd_read32(edu, 0, 4, &before) == DEVFD_OK);
	memset(buf, 0x11, sizeof buf);
	done = 99;
	EXPECT(devfd_write_counted(edu, 0, 4, buf, 6, &done) == -EINVAL);
	EXPECT(done == 0);
	EXPECT(devfd_read32(edu, 0, 4, &after) == DEVFD_OK);
	EXPECT(before == after);
	EXPECT(devfd_write(edu, 0, 4, buf, 4) == DEVFD_OK);
	EXPECT(devfd_read32(edu, 0, 4, &after) == DEVFD_OK);
	EXPECT(after == (uint32_t)~0x11111111u);
	/* PL031 takes 32-bit accesses only: refused before reaching the device. */
	EXPECT(devfd_read32(rtc, 0, 0xfe0, &v32) == DEVFD_OK);
	EXPECT(v32 == 0x31);
	EXPECT(devfd_read8(rtc, 0, 0xfe0, buf) == -EINVAL);

	/* Zero-length accesses succeed anywhere in an existing region, and past its end. */
	EXPECT(devfd_read(edu, 0, 0x100000, buf, 0) == DEVFD_OK);
	EXPECT(devfd_write(edu, 0, (uint64_t)1 << 40, buf, 0) == DEVFD_OK);
	EXPECT(devfd_read(edu, 0, 0x100000, buf, 4) == -ENXIO);
	EXPECT(devfd_read(edu, 99, 0, buf, 0) == -ENOENT);

	/* Sparse areas: a mappable region without SPARSE_MMAP is one area, itself. */
	EXPECT(devfd_desc_mmap_area(devfd_device_desc(mem), 0, 0, &off, &size) == DEVFD_OK);
	EXPECT(off == 0 && size == 1 << 20);
	EXPECT(devfd_desc_mmap_area(devfd_device_desc(mem), 0, 1, &off, &size) == -ENOENT);
	EXPECT(devfd_desc_mmap_area(d, 0, 0, &off, &size) == -ENOENT);

	/* A partial mapping sees what bulk writes put there. */
	addr = NULL;
	EXPECT(devfd_map_range(mem, 0, 8192, 100, &addr) == DEVFD_OK);
	EXPECT(devfd_map_range(mem, 0, 100, 100, &addr) == -EINVAL || addr != NULL);
	EXPECT(devfd_map_range(mem, 0, (1 << 20) - 4096, 8192, &addr) == -ENXIO);
	memcpy(buf, "devfd-abi", 9);
	EXPECT(devfd_write(mem, 0, 8192 + 16, buf, 9) == DEVFD_OK);
	if (addr)
		EXPECT(memcmp((char *)addr + 16, "devfd-abi", 9) == 0);

	/* Opening from an fd: the handle owns it. */
	fd = open(in_dir(argv[1], "edu0"), O_RDWR);
	EXPECT(fd >= 0);
	dev = NULL;
	EXPECT(devfd_open_fd(fd, &dev) == DEVFD_OK);
	if (dev) {
		EXPECT(devfd_read32(dev, 0, 0, &v32) == DEVFD_OK && v32 == 0x010000ed);
		devfd_close(dev);
	}
	EXPECT(fcntl(fd, F_GETFD) < 0);
	dev = (devfd_device *)&failures;
	EXPECT(devfd_open_fd(-1, &dev) == -EBADF && dev == NULL);

	/* A late opener learns of an outstanding automasked INTx through counter and status. */
	EXPECT(devfd_write32(edu, 0, 0x20, 0x80) == DEVFD_OK);
	EXPECT(devfd_write32(edu, 0, 0x08, 5) == DEVFD_OK);
	EXPECT(devfd_wait_irq(edu, 0, 2000, &events) == DEVFD_OK && events == 1);
	EXPECT(devfd_open(in_dir(argv[1], "edu0"), &dev) == DEVFD_OK);
	if (dev) {
		EXPECT(devfd_irq_status(dev, 0, 0, &status) == DEVFD_OK);
		EXPECT((status & DEVFD_IRQ_STATUS_UNACKED) != 0);
		EXPECT(devfd_wait_irq(dev, 0, 0, &events) == DEVFD_OK && events == 1);
		/* Clear the cause at the device, then acknowledge. */
		EXPECT(devfd_write32(dev, 0, 0x64, 1) == DEVFD_OK);
		EXPECT(devfd_irq_unmask(dev, 0, 0) == DEVFD_OK);
		EXPECT(devfd_irq_status(dev, 0, 0, &status) == DEVFD_OK && status == 0);
		EXPECT(devfd_irq_status(dev, 0, 1, &status) == -ENOENT);
		devfd_close(dev);
	}

	rc = devfd_unmap(mem, addr);
	EXPECT(addr == NULL || rc == DEVFD_OK);
	devfd_close(edu);
	devfd_close(mem);
	devfd_close(rtc);
	if (failures) {
		fprintf(stderr, "abi: %d check(s) failed\n", failures);
		return 1;
	}
	printf("abi: OK\n");
	return 0;
}
