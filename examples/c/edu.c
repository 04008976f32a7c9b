/*
 * edu: a user-space driver for QEMU's edu device, written against libdevfd.
 *
 *   cc edu.c $(pkg-config --cflags --libs devfd) -o edu
 *   ./edu /run/devfd/edu0
 *
 * It finds BAR0 and the INTx interrupt through the description (never by a known offset),
 * checks the ID and liveness registers, computes 5! and 10! with the completion interrupt,
 * and acknowledges it. With a DMA window (devfd serve --device edu --dma 1M), it also DMAs
 * a buffer into edu and back, each transfer ending with the completion interrupt; without
 * one it says that check is skipped. Exit status 0 when the device behaves.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <devfd.h>

#define EDU_ID 0x00
#define EDU_LIVENESS 0x04
#define EDU_FACTORIAL 0x08
#define EDU_STATUS 0x20
#define EDU_IRQ_STATUS 0x24
#define EDU_IRQ_ACK 0x64
#define EDU_STATUS_IRQ_ON_DONE 0x80
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_COUNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_DMA_RUN 1
#define EDU_DMA_TO_PCI 2
#define EDU_DMA_IRQ 4
#define EDU_DMA_BUFFER 0x40000
#define EDU_IRQ_DMA 0x100
#define DMA_LEN 1024

#define CHECK(call)                                                                         \
	do {                                                                                \
		int err_ = (call);                                                          \
		if (err_) {                                                                 \
			fprintf(stderr, "edu: %s: %s\n", #call, devfd_strerror(err_));     \
			goto out;                                                           \
		}                                                                           \
	} while (0)

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: edu DEVICE-FILE\n");
		return 2;
	}
	devfd_device *dev;
	int err = devfd_open(argv[1], &dev);
	if (err) {
		fprintf(stderr, "edu: %s: %s\n", argv[1], devfd_strerror(err));
		return 2;
	}
	int ok = 0;
	const devfd_desc *desc = devfd_device_desc(dev);
	devfd_pci_id id;
	devfd_resource bar0 = DEVFD_RESOURCE_INIT, intx = DEVFD_RESOURCE_INIT;
	CHECK(devfd_desc_pci_id(desc, &id));
	if (id.vendor != 0x1234 || id.device != 0x11e8) {
		fprintf(stderr, "edu: %04x:%04x is not an edu device\n", id.vendor, id.device);
		goto out;
	}
	CHECK(devfd_desc_pci_bar(desc, 0, &bar0));
	/* The INTx interrupt: the first resource of kind INTx. */
	int found = 0;
	for (size_t i = 0; i < devfd_desc_resource_count(desc) && !found; i++) {
		CHECK(devfd_desc_resource(desc, i, &intx));
		found = intx.kind == DEVFD_RESOURCE_INTERRUPT && intx.irq_kind == DEVFD_IRQ_KIND_INTX;
	}
	if (!found) {
		fprintf(stderr, "edu: no INTx interrupt\n");
		goto out;
	}

	/* As any PCI driver: memory decoding and bus mastering on (DMA and MSI need it). A
	 * device file without config space access (a read-only one) keeps what it has. */
	devfd_resource config = DEVFD_RESOURCE_INIT;
	uint16_t command;
	if (devfd_desc_pci_config(desc, &config) == 0 &&
	    devfd_read16(dev, config.index, 4, &command) == 0)
		(void)devfd_write16(dev, config.index, 4, command | 0x6);

	uint32_t value;
	CHECK(devfd_read32(dev, bar0.index, EDU_ID, &value));
	printf("id: %#010x\n", value);
	if (value != 0x010000ed)
		goto out;
	CHECK(devfd_write32(dev, bar0.index, EDU_LIVENESS, 0x12345678));
	CHECK(devfd_read32(dev, bar0.index, EDU_LIVENESS, &value));
	printf("liveness: %#010x\n", value);
	if (value != (uint32_t)~0x12345678u)
		goto out;

	CHECK(devfd_write32(dev, bar0.index, EDU_STATUS, EDU_STATUS_IRQ_ON_DONE));
	const uint32_t inputs[] = {5, 10};
	const uint32_t expected[] = {120, 3628800};
	for (int i = 0; i < 2; i++) {
		uint64_t events = 0;
		CHECK(devfd_write32(dev, bar0.index, EDU_FACTORIAL, inputs[i]));
		CHECK(devfd_wait_irq(dev, intx.index, 5000, &events));
		uint32_t irq_status, result;
		CHECK(devfd_read32(dev, bar0.index, EDU_IRQ_STATUS, &irq_status));
		CHECK(devfd_read32(dev, bar0.index, EDU_FACTORIAL, &result));
		printf("factorial(%u) = %u (interrupt: %llu event, status %#x)\n", inputs[i], result,
		       (unsigned long long)events, irq_status);
		if (result != expected[i] || events < 1)
			goto out;
		/* Acknowledge in the device, then unmask the automasked INTx vector. */
		CHECK(devfd_write32(dev, bar0.index, EDU_IRQ_ACK, irq_status));
		CHECK(devfd_irq_unmask(dev, intx.index, 0));
	}
	/* DMA: a buffer into edu's DMA buffer and back, through the DMA window. */
	devfd_resource window = DEVFD_RESOURCE_INIT;
	err = devfd_desc_dma_window(desc, 0, &window);
	if (err == -ENOENT) {
		printf("dma: skipped (the device file has no DMA window)\n");
	} else {
		CHECK(err);
		void *addr = NULL;
		size_t len;
		unsigned char buf[DMA_LEN];
		/* Mapped, or, where the server cannot hand out mappings (FUSE without
		 * passthrough, as in Linux 6.1), through reads and writes of the region. */
		err = devfd_map(dev, window.index, &addr, &len);
		if (err == -ENODEV) {
			printf("dma: the window cannot be mapped here; using read and write\n");
			addr = NULL;
		} else {
			CHECK(err);
		}
		volatile unsigned char *mem = addr;
		for (int i = 0; i < DMA_LEN; i++)
			buf[i] = (unsigned char)(i * 13 + 7);
		if (mem) {
			for (int i = 0; i < DMA_LEN; i++) {
				mem[i] = buf[i];
				mem[8192 + i] = 0;
			}
		} else {
			unsigned char zero[DMA_LEN] = {0};
			CHECK(devfd_write(dev, window.index, 0, buf, DMA_LEN));
			CHECK(devfd_write(dev, window.index, 8192, zero, DMA_LEN));
		}
		uint64_t to_device, back;
		CHECK(devfd_dma_bus_address(&window, 0, &to_device));
		CHECK(devfd_dma_bus_address(&window, 8192, &back));
		const uint64_t src[] = {to_device, EDU_DMA_BUFFER};
		const uint64_t dst[] = {EDU_DMA_BUFFER, back};
		const uint64_t dir[] = {0, EDU_DMA_TO_PCI};
		for (int i = 0; i < 2; i++) {
			uint64_t events = 0;
			uint32_t irq_status;
			CHECK(devfd_write64(dev, bar0.index, EDU_DMA_SRC, src[i]));
			CHECK(devfd_write64(dev, bar0.index, EDU_DMA_DST, dst[i]));
			CHECK(devfd_write64(dev, bar0.index, EDU_DMA_COUNT, DMA_LEN));
			CHECK(devfd_write64(dev, bar0.index, EDU_DMA_CMD,
					    EDU_DMA_RUN | EDU_DMA_IRQ | dir[i]));
			CHECK(devfd_wait_irq(dev, intx.index, 5000, &events));
			CHECK(devfd_read32(dev, bar0.index, EDU_IRQ_STATUS, &irq_status));
			if (!(irq_status & EDU_IRQ_DMA)) {
				fprintf(stderr, "edu: DMA done without its status bit (%#x)\n", irq_status);
				goto out;
			}
			CHECK(devfd_write32(dev, bar0.index, EDU_IRQ_ACK, irq_status));
			CHECK(devfd_irq_unmask(dev, intx.index, 0));
		}
		unsigned char back_buf[DMA_LEN];
		if (mem) {
			for (int i = 0; i < DMA_LEN; i++)
				back_buf[i] = mem[8192 + i];
		} else {
			CHECK(devfd_read(dev, window.index, 8192, back_buf, DMA_LEN));
		}
		int same = 1;
		for (int i = 0; i < DMA_LEN; i++)
			same &= back_buf[i] == (unsigned char)(i * 13 + 7);
		printf("dma: %d bytes to bus %#llx and back to %#llx: %s\n", DMA_LEN,
		       (unsigned long long)to_device, (unsigned long long)back,
		       same ? "same" : "DIFFERENT");
		if (addr)
			CHECK(devfd_unmap(dev, addr));
		if (!same)
			goto out;
	}
	/* A misaligned access is refused, not silently wrong. */
	err = devfd_read32(dev, bar0.index, 2, &value);
	printf("misaligned read: %s\n", devfd_strerror(err));
	ok = err == -EINVAL;
out:
	devfd_close(dev);
	printf("%s\n", ok ? "edu: OK" : "edu: FAILED");
	return ok ? 0 : 1;
}
