/*
 * edu: a user-space driver for QEMU's edu device, written against libdevfd.
 *
 *   cc edu.c $(pkg-config --cflags --libs devfd) -o edu
 *   ./edu /run/devfd/edu0
 *
 * It finds BAR0 and the INTx interrupt through the description (never by a known offset),
 * checks the ID and liveness registers, computes 5! and 10! with the completion interrupt,
 * and acknowledges it. Exit status 0 when the device behaves.
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
	/* A misaligned access is refused, not silently wrong. */
	err = devfd_read32(dev, bar0.index, 2, &value);
	printf("misaligned read: %s\n", devfd_strerror(err));
	ok = err == -EINVAL;
out:
	devfd_close(dev);
	printf("%s\n", ok ? "edu: OK" : "edu: FAILED");
	return ok ? 0 : 1;
}
