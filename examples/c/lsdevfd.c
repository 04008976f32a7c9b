/*
 * lsdevfd: list the devfd device files in a directory, lspci-style.
 *
 *   cc lsdevfd.c $(pkg-config --cflags --libs devfd) -o lsdevfd
 *   ./lsdevfd [-v] [DIR]        (DIR defaults to /run/devfd)
 *
 * Every fact comes from the device's own description through libdevfd: no offsets are
 * hard-coded, which is the point.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <devfd.h>

static const char *size_text(uint64_t size, char *buf, size_t len)
{
	static const char *units[] = {"", "K", "M", "G", "T"};
	int unit = 0;
	while (size >= 1024 && size % 1024 == 0 && unit < 4) {
		size /= 1024;
		unit++;
	}
	snprintf(buf, len, "%llu%s", (unsigned long long)size, units[unit]);
	return buf;
}

static const char *irq_kind(uint32_t kind)
{
	static const char *names[] = {"?", "INTx", "MSI", "MSI-X", "wired", "error", "request"};
	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "?";
}

/* Skips "name.rN": the mmap windows of a device, not devices of their own. */
static int is_region_file(const char *name)
{
	const char *dot = strrchr(name, '.');
	if (!dot || dot[1] != 'r' || !dot[2])
		return 0;
	for (const char *p = dot + 2; *p; p++)
		if (*p < '0' || *p > '9')
			return 0;
	return 1;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Returns 0 when the device was opened and listed. */
static int show(const char *dir, const char *name, int verbose)
{
	char path[4096], sz[32];
	devfd_device *dev;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int err = devfd_open(path, &dev);
	if (err) {
		printf("%s: %s\n", name, devfd_strerror(err));
		return -1;
	}
	const devfd_desc *desc = devfd_device_desc(dev);
	devfd_pci_id id;
	const char *label = NULL;
	if (devfd_desc_pci_id(desc, &id) == DEVFD_OK) {
		printf("%s PCI device [%06x]: %04x:%04x (subsystem %04x:%04x, rev %02x)\n", name,
		       id.class_code, id.vendor, id.device, id.subsystem_vendor, id.subsystem_device,
		       id.revision);
	} else {
		const char *compatible = devfd_desc_compatible(desc, 0);
		printf("%s platform device: %s\n", name, compatible ? compatible : "(no compatible)");
	}
	size_t n = devfd_desc_resource_count(desc);
	for (size_t i = 0; i < n; i++) {
		devfd_resource r = DEVFD_RESOURCE_INIT;
		if (devfd_desc_resource(desc, i, &r) != DEVFD_OK)
			continue;
		label = devfd_desc_string(desc, r.label_offset);
		const char *dt = devfd_desc_string(desc, r.dt_path_offset);
		if (r.kind == DEVFD_RESOURCE_REGION) {
			char where[64] = "";
			if (r.location == DEVFD_LOC_PCI_BAR)
				snprintf(where, sizeof(where), "BAR%u ", r.location_index);
			else if (r.location == DEVFD_LOC_PCI_CONFIG)
				snprintf(where, sizeof(where), "config ");
			else if (r.location == DEVFD_LOC_PCI_ROM)
				snprintf(where, sizeof(where), "ROM ");
			printf("\tRegion %u: %sat offset %#llx [size=%s] %c%c%c", r.index, where,
			       (unsigned long long)r.offset, size_text(r.size, sz, sizeof(sz)),
			       r.flags & DEVFD_REGION_READ ? 'r' : '-',
			       r.flags & DEVFD_REGION_WRITE ? 'w' : '-',
			       r.flags & DEVFD_REGION_MMAP ? 'm' : '-');
		} else {
			printf("\tInterrupt %u: %s x%u %s%s%s", r.index, irq_kind(r.irq_kind), r.count,
			       r.flags & DEVFD_IRQ_LEVEL ? "level" : "edge",
			       r.flags & DEVFD_IRQ_MASKABLE ? " maskable" : "",
			       r.flags & DEVFD_IRQ_AUTOMASKED ? " automasked" : "");
		}
		if (verbose && dt)
			printf(" %s", dt);
		if (label)
			printf(" \"%s\"", label);
		printf("\n");
	}
	devfd_close(dev);
	return 0;
}

int main(int argc, char **argv)
{
	int verbose = argc > 1 && strcmp(argv[1], "-v") == 0;
	const char *dir = argc > 1 + verbose ? argv[1 + verbose] : "/run/devfd";
	DIR *d = opendir(dir);
	if (!d) {
		perror(dir);
		return 2;
	}
	char *names[1024];
	size_t count = 0;
	struct dirent *e;
	while ((e = readdir(d)) && count < 1024) {
		if (e->d_name[0] == '.' || is_region_file(e->d_name))
			continue;
		char *copy = strdup(e->d_name);
		if (!copy) {
			perror("strdup");
			return 2;
		}
		names[count++] = copy;
	}
	closedir(d);
	qsort(names, count, sizeof(names[0]), cmp);
	size_t failed = 0;
	for (size_t i = 0; i < count; i++) {
		failed += show(dir, names[i], verbose) != 0;
		free(names[i]);
	}
	return failed ? 1 : 0;
}
