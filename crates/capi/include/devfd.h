/*
 * devfd.h: the C API of libdevfd, version DEVFD_VERSION (see devfd_version()).
 * Compiles as C89 and later, and as C++.
 *
 * Errors: every function returning int returns 0 (DEVFD_OK) or a negative errno code; each
 * function's comment lists the codes it returns; devfd_strerror() describes every one.
 * A device server answers bad accesses with these (SPEC.md section 6.6), which libdevfd
 * checks first and returns without a system call where it can:
 *   -ENXIO      no region or control window at the offset, or the access runs past its end
 *   -EINVAL     register region: a width it does not accept (1, 2, 4, 8 and the region's
 *               DEVFD_ACCESS_* widths), or an offset not naturally aligned; control window:
 *               not exactly one field, a mask value other than 0/1, a write to the status word
 *   -EPERM      a write to the description; a read or write the region's flags forbid; a
 *               write to an event counter or to the mask of a non-maskable interrupt
 *   -EIO        the device model failed the access
 *   -ETIMEDOUT  the device model did not answer within the server's bound (1 s by default)
 *   -ENOTCONN   the server is gone
 * Zero-length reads and writes succeed with no effect at any offset of an existing region.
 *
 * Ownership and threads:
 * - devfd_desc: created by devfd_desc_parse(), freed by devfd_desc_free(). Immutable: any
 *   number of threads may call the devfd_desc_* getters on one at once.
 * - devfd_device: created by devfd_open() or devfd_open_fd(), freed by devfd_close() (which
 *   also unmaps what devfd_map() mapped and closes the file). All accessors are safe to call
 *   from several threads at once; only devfd_close() must not race with any other call on the
 *   same handle.
 * - devfd_device_desc() borrows the device's description: valid until devfd_close().
 * - Strings returned (devfd_strerror, devfd_desc_string, devfd_parse_error.message) are
 *   owned by libdevfd: static, or valid as long as the object they came from.
 * - On failure, functions that create a handle store NULL in *out.
 *
 * Interrupts (SPEC.md section 6.3): each open device handle has an event counter per vector;
 * every event adds 1 to it. devfd_wait_irq() and devfd_irq_count() return the events counted
 * since the last call and reset the counter to 0. A handle opened after an event fired
 * starts with 1 if the event is still outstanding (held while masked, automasked and not
 * acknowledged, or a level source still asserted); devfd_irq_status() tells which.
 * To handle one: wait; clear the cause at the device (for a level interrupt, or it stays
 * asserted); then, for a DEVFD_IRQ_AUTOMASKED interrupt, devfd_irq_unmask() acknowledges it
 * (the vector masked itself when it fired; nothing more arrives until then).
 *
 * devfd_resource grows: set argsz = sizeof(devfd_resource) before passing one
 * (devfd_resource r = DEVFD_RESOURCE_INIT;).
 */

#ifndef DEVFD_H
#define DEVFD_H

#include <stddef.h>
#include <stdint.h>
#ifdef __cplusplus
extern "C" {
#endif

/**
 * Version of this libdevfd (and of devfd.h): major.
 */
#define DEVFD_VERSION_MAJOR 0

/**
 * Version: minor.
 */
#define DEVFD_VERSION_MINOR 3

/**
 * Version: patch.
 */
#define DEVFD_VERSION_PATCH 0

/**
 * The version as one number, `major << 16 | minor << 8 | patch`, usable in `#if`; compare
 * it with devfd_version() to detect a header/library mismatch.
 */
#define DEVFD_VERSION 768

/**
 * Success.
 */
#define DEVFD_OK 0

/**
 * Bus code of a PCI device (devfd_desc_bus()): `'P'`.
 */
#define DEVFD_BUS_PCI 80

/**
 * Bus code of a device-tree platform device: `'T'`.
 */
#define DEVFD_BUS_PLATFORM 84

/**
 * `devfd_resource.kind`: a region.
 */
#define DEVFD_RESOURCE_REGION 1

/**
 * `devfd_resource.kind`: an interrupt.
 */
#define DEVFD_RESOURCE_INTERRUPT 2

/**
 * Region flag: readable.
 */
#define DEVFD_REGION_READ 1

/**
 * Region flag: writable.
 */
#define DEVFD_REGION_WRITE 2

/**
 * Region flag: mmap-capable (memory-like: any length and alignment).
 */
#define DEVFD_REGION_MMAP 4

/**
 * Interrupt flag: level-triggered.
 */
#define DEVFD_IRQ_LEVEL 1

/**
 * Interrupt flag: maskable.
 */
#define DEVFD_IRQ_MASKABLE 2

/**
 * Interrupt flag: masks itself when it fires, until unmasked (acknowledged).
 */
#define DEVFD_IRQ_AUTOMASKED 4

/**
 * `devfd_resource.irq_kind`: PCI INTx.
 */
#define DEVFD_IRQ_KIND_INTX 1

/**
 * `devfd_resource.irq_kind`: PCI MSI.
 */
#define DEVFD_IRQ_KIND_MSI 2

/**
 * `devfd_resource.irq_kind`: PCI MSI-X.
 */
#define DEVFD_IRQ_KIND_MSIX 3

/**
 * `devfd_resource.irq_kind`: a wired platform interrupt (device-tree `interrupts`).
 */
#define DEVFD_IRQ_KIND_WIRED 4

/**
 * `devfd_resource.irq_kind`: error reporting (e.g. PCI AER).
 */
#define DEVFD_IRQ_KIND_ERROR 5

/**
 * `devfd_resource.irq_kind`: device request (release the device).
 */
#define DEVFD_IRQ_KIND_REQUEST 6

/**
 * devfd_irq_status() bit: an event arrived while masked and is held.
 */
#define DEVFD_IRQ_STATUS_PENDING 1

/**
 * devfd_irq_status() bit: an automasked vector fired and awaits devfd_irq_unmask().
 */
#define DEVFD_IRQ_STATUS_UNACKED 2

/**
 * devfd_irq_status() bit: the level-triggered source is asserted.
 */
#define DEVFD_IRQ_STATUS_ASSERTED 4

/**
 * `devfd_resource.location`: nothing bus-specific.
 */
#define DEVFD_LOC_NONE 0

/**
 * `devfd_resource.location`: PCI BAR `location_index`.
 */
#define DEVFD_LOC_PCI_BAR 1

/**
 * `devfd_resource.location`: PCI configuration space.
 */
#define DEVFD_LOC_PCI_CONFIG 2

/**
 * `devfd_resource.location`: PCI expansion ROM.
 */
#define DEVFD_LOC_PCI_ROM 3

/**
 * `devfd_resource.location`: device-tree node property entry `location_index`.
 */
#define DEVFD_LOC_DT 4

/**
 * Location: a DMA window (format 1.2): `dma_address` is its bus address.
 */
#define DEVFD_LOC_DMA 5

/**
 * `devfd_resource.location_flags` of a PCI BAR: an I/O BAR.
 */
#define DEVFD_BAR_IO 1

/**
 * `devfd_resource.location_flags` of a PCI BAR: a 64-bit memory BAR.
 */
#define DEVFD_BAR_MEM64 2

/**
 * `devfd_resource.location_flags` of a PCI BAR: prefetchable.
 */
#define DEVFD_BAR_PREFETCHABLE 4

/**
 * `devfd_resource.location_flags` of a DT location: the node's `reg` property.
 */
#define DEVFD_DT_PROP_REG 1

/**
 * `devfd_resource.location_flags` of a DT location: the node's `ranges` property.
 */
#define DEVFD_DT_PROP_RANGES 2

/**
 * `devfd_resource.location_flags` of a DT location: the node's `interrupts` property.
 */
#define DEVFD_DT_PROP_INTERRUPTS 3

/**
 * `devfd_resource.access_widths` bit: 1-byte accesses accepted.
 */
#define DEVFD_ACCESS_8 1

/**
 * `devfd_resource.access_widths` bit: 2-byte accesses accepted.
 */
#define DEVFD_ACCESS_16 2

/**
 * `devfd_resource.access_widths` bit: 4-byte accesses accepted.
 */
#define DEVFD_ACCESS_32 4

/**
 * `devfd_resource.access_widths` bit: 8-byte accesses accepted.
 */
#define DEVFD_ACCESS_64 8

/**
 * A validated description (opaque).
 */
typedef struct devfd_desc devfd_desc;

/**
 * An open device file (opaque).
 */
typedef struct devfd_device devfd_device;

/**
 * Where and why devfd_desc_parse() rejected a description.
 */
typedef struct devfd_parse_error {
  /**
   * Byte offset of the problem in the description.
   */
  uint64_t offset;
  /**
   * Top-level record position, or -1.
   */
  int32_t record;
  /**
   * Sub-record position within it, or -1.
   */
  int32_t sub_record;
  /**
   * A NUL-terminated message, e.g. "byte 0x60, record 1 (REGION): rec_len is 0".
   */
  char message[160];
} devfd_parse_error;

/**
 * One entry of the flat resource table (SPEC.md appendix A), in native byte order.
 *
 * Growth: set `argsz = sizeof(devfd_resource)` before passing one to a function that fills
 * it (as with VFIO's `argsz`). libdevfd fills the fields it knows, up to `argsz` bytes, and
 * sets `argsz` to the size it filled, so a program built against a newer header still works
 * with this library (fields past the returned `argsz` are not filled). An `argsz` below 64
 * fails with -EINVAL and fills nothing.
 */
typedef struct devfd_resource {
  /**
   * In: the size of the caller's struct. Out: the bytes libdevfd filled.
   */
  uint32_t argsz;
  /**
   * DEVFD_RESOURCE_REGION or DEVFD_RESOURCE_INTERRUPT.
   */
  uint32_t kind;
  /**
   * Region or interrupt index.
   */
  uint32_t index;
  /**
   * DEVFD_REGION_* or DEVFD_IRQ_* flags.
   */
  uint32_t flags;
  /**
   * DEVFD_LOC_*.
   */
  uint32_t location;
  /**
   * Interrupt: vectors. Region: sparse mmap areas (0: the whole region may be mapped);
   * devfd_desc_mmap_area() gives them.
   */
  uint32_t count;
  /**
   * PCI BAR number, or the DT property entry.
   */
  uint32_t location_index;
  /**
   * DEVFD_IRQ_KIND_*; 0 for regions.
   */
  uint32_t irq_kind;
  /**
   * PCI BAR: DEVFD_BAR_* flags. DT location: DEVFD_DT_PROP_*.
   */
  uint32_t location_flags;
  /**
   * Pass to devfd_desc_string() for the device-tree path (0: none).
   */
  uint32_t dt_path_offset;
  /**
   * Pass to devfd_desc_string() for the label (0: none).
   */
  uint32_t label_offset;
  /**
   * Register-like region: the DEVFD_ACCESS_* widths it accepts (all four unless its
   * description restricts them). Memory-like region (DEVFD_REGION_MMAP) and interrupt: 0.
   */
  uint32_t access_widths;
  /**
   * Region: offset in the device file. Interrupt: offset of its control window.
   */
  uint64_t offset;
  /**
   * Region: size. Interrupt: size of its control window (16 bytes per vector).
   */
  uint64_t size;
  /**
   * (libdevfd 0.3, `argsz` ≥ 72) A DMA window (DEVFD_LOC_DMA): the bus address at which
   * the device reaches the region's first byte; 0 for every other resource.
   */
  uint64_t dma_address;
} devfd_resource;

/**
 * PCI identity.
 */
typedef struct devfd_pci_id {
  /**
   * Vendor ID.
   */
  uint16_t vendor;
  /**
   * Device ID.
   */
  uint16_t device;
  /**
   * Subsystem vendor ID.
   */
  uint16_t subsystem_vendor;
  /**
   * Subsystem ID.
   */
  uint16_t subsystem_device;
  /**
   * 24-bit class code.
   */
  uint32_t class_code;
  /**
   * Revision ID.
   */
  uint8_t revision;
  /**
   * Zero.
   */
  uint8_t reserved[3];
} devfd_pci_id;

/**
 * A static, NUL-terminated description of a code returned by any devfd function.
 */
const char *devfd_strerror(int code);

/**
 * DEVFD_VERSION of the library actually loaded (which may differ from the header's).
 */
uint32_t devfd_version(void);

/**
 * Validates `len` bytes at `buf` as a description (SPEC.md §7) and stores a new handle in
 * `*out` (NULL on any failure, when `out` is not NULL).
 *
 * Returns 0; -EINVAL if `out` is NULL, or `buf` is NULL with `len` > 0; -EBADMSG if the bytes
 * are not a valid description (then `*err`, if `err` is not NULL, says where and why);
 * -ENOMEM.
 *
 * # Safety
 * `buf` is valid for reads of `len` bytes; `out` is valid for a write; `err` is NULL or valid
 * for a write.
 */
int devfd_desc_parse(const uint8_t *buf,
                     size_t len,
                     struct devfd_desc **out,
                     struct devfd_parse_error *err);

/**
 * Frees a description from devfd_desc_parse(); NULL is ignored.
 *
 * # Safety
 * `desc` is NULL or a handle from devfd_desc_parse() not yet freed.
 */
void devfd_desc_free(struct devfd_desc *desc);

/**
 * The bus code (DEVFD_BUS_PCI, DEVFD_BUS_PLATFORM, or another capital letter), or -EINVAL.
 *
 * # Safety
 * `desc` is NULL or a live handle.
 */
int devfd_desc_bus(const struct devfd_desc *desc);

/**
 * Length in bytes of the description (0 for NULL).
 *
 * # Safety
 * `desc` is NULL or a live handle.
 */
size_t devfd_desc_len(const struct devfd_desc *desc);

/**
 * Number of entries of the flat resource table: regions, then interrupts (0 for NULL).
 *
 * # Safety
 * `desc` is NULL or a live handle.
 */
size_t devfd_desc_resource_count(const struct devfd_desc *desc);

/**
 * Copies entry `i` of the flat resource table to `*out`; -ENOENT past the end.
 *
 * # Safety
 * `desc` is NULL or a live handle; `out` is valid for a write.
 */
int devfd_desc_resource(const struct devfd_desc *desc, size_t i, struct devfd_resource *out);

/**
 * The region with this index; -ENOENT if none.
 *
 * # Safety
 * `desc` is NULL or a live handle; `out` is valid for a write.
 */
int devfd_desc_region(const struct devfd_desc *desc, uint32_t index, struct devfd_resource *out);

/**
 * The interrupt with this index; -ENOENT if none.
 *
 * # Safety
 * `desc` is NULL or a live handle; `out` is valid for a write.
 */
int devfd_desc_interrupt(const struct devfd_desc *desc, uint32_t index, struct devfd_resource *out);

/**
 * The region that is PCI BAR `bar` (0-5).
 *
 * Returns 0; -EINVAL (`desc` or `out` NULL, `out->argsz` too small, or `bar` > 5); -ENOENT
 * if the device has no such BAR (or is not PCI).
 *
 * # Safety
 * `desc` is NULL or a live handle; `out` is valid for a write.
 */
int devfd_desc_pci_bar(const struct devfd_desc *desc, uint32_t bar, struct devfd_resource *out);

/**
 * Area `n` of the mappable areas of region `region`: its offset within the region and its
 * size. A region with DEVFD_REGION_MMAP and no sparse areas (`count` 0 in its resource) has
 * one area, the whole region.
 *
 * Returns 0; -EINVAL (a NULL argument); -ENOENT (no such region, a region that cannot be
 * mapped, or `n` past the last area).
 *
 * # Safety
 * `desc` is NULL or a live handle; `offset` and `size` are valid for writes.
 */
int devfd_desc_mmap_area(const struct devfd_desc *desc,
                         uint32_t region,
                         uint32_t n,
                         uint64_t *offset,
                         uint64_t *size);

/**
 * The `n`-th DMA window (0 first, in file order; format 1.2): memory the device reaches by
 * DMA at `out->dma_address` (set `out->argsz` ≥ 72 to receive it). Map it with devfd_map()
 * and translate with devfd_dma_bus_address(). -ENOENT if there are not `n + 1` windows.
 *
 * # Safety
 * `desc` is NULL or a live handle; `out` is valid for a write of its `argsz` bytes.
 */
int devfd_desc_dma_window(const struct devfd_desc *desc, uint32_t n, struct devfd_resource *out);

/**
 * The bus address the device reaches byte `offset` of DMA window `window` at: what a driver
 * programs into the device's DMA registers for the buffer at that offset of its mapping.
 * Returns 0; -EINVAL (`window` or `bus` NULL, or not a DMA window); -ENXIO (`offset` ≥ the
 * window's size).
 *
 * # Safety
 * `window` is NULL or a devfd_resource filled with `argsz` ≥ 72; `bus` is NULL or valid for
 * a write.
 */
int devfd_dma_bus_address(const struct devfd_resource *window, uint64_t offset, uint64_t *bus);

/**
 * The offset in DMA window `window` of bus address `bus` (the inverse of
 * devfd_dma_bus_address(), for addresses a device reports). Returns 0; -EINVAL as there;
 * -ENXIO if the window does not hold `bus`.
 *
 * # Safety
 * As devfd_dma_bus_address(); `offset` is NULL or valid for a write.
 */
int devfd_dma_offset(const struct devfd_resource *window, uint64_t bus, uint64_t *offset);

/**
 * The region that is PCI configuration space; -ENOENT if none.
 *
 * # Safety
 * `desc` is NULL or a live handle; `out` is valid for a write.
 */
int devfd_desc_pci_config(const struct devfd_desc *desc, struct devfd_resource *out);

/**
 * The region that is entry `index` of the `reg` property of device-tree node `path`.
 *
 * # Safety
 * `desc` is NULL or a live handle; `path` is NULL or a NUL-terminated string; `out` is
 * valid for a write.
 */
int devfd_desc_dt_region(const struct devfd_desc *desc,
                         const char *path,
                         uint32_t index,
                         struct devfd_resource *out);

/**
 * PCI identity of the device; -ENOENT if it is not a PCI device.
 *
 * # Safety
 * `desc` is NULL or a live handle; `out` is valid for a write.
 */
int devfd_desc_pci_id(const struct devfd_desc *desc, struct devfd_pci_id *out);

/**
 * The NUL-terminated string at byte `offset` of the description (a `dt_path_offset` or
 * `label_offset` of a resource), or NULL if `offset` is 0 or not a string. Valid as long as
 * `desc`.
 *
 * # Safety
 * `desc` is NULL or a live handle.
 */
const char *devfd_desc_string(const struct devfd_desc *desc, uint32_t offset);

/**
 * The `n`-th device-tree `compatible` string, or NULL. Valid as long as `desc`.
 *
 * # Safety
 * `desc` is NULL or a live handle.
 */
const char *devfd_desc_compatible(const struct devfd_desc *desc, size_t n);

/**
 * Opens a device file (or a description file) read-write, discovers its description with
 * at most two reads, validates it once, and stores a new handle in `*out` (NULL on any
 * failure, when `out` is not NULL).
 *
 * Returns 0; -EINVAL (`path` or `out` NULL); -EBADMSG (not a valid description, or shorter
 * than its `desc_len`); -ENOMEM; or what open(2) and pread(2) fail with: -ENOENT, -EACCES,
 * -EISDIR, -ENOTDIR, -ENAMETOOLONG, -ELOOP, -ENODEV, -ENXIO, -EBUSY, -EINTR, -EAGAIN,
 * -EMFILE, -ENFILE, -EROFS, -ENOTCONN (server gone), -ECONNABORTED, -EIO.
 *
 * # Safety
 * `path` is a NUL-terminated string; `out` is valid for a write.
 */
int devfd_open(const char *path, struct devfd_device **out);

/**
 * Like devfd_open(), for a device file that is open already (`fd`, opened read-write or
 * read-only, for example passed by a broker). On success the handle owns `fd` (devfd_close()
 * closes it); on failure `fd` is closed too and `*out` is NULL.
 *
 * Returns 0; -EINVAL (`out` NULL); -EBADF (`fd` is not an open descriptor); -EBADMSG (not a
 * valid description); or what pread(2) fails with (-EISDIR, -ESPIPE, -ENOTCONN, -EIO, …).
 *
 * # Safety
 * `fd` is an open descriptor owned by the caller, not used by it after the call; `out` is
 * valid for a write.
 */
int devfd_open_fd(int fd, struct devfd_device **out);

/**
 * Closes a device (unmapping everything devfd_map() mapped); NULL is ignored.
 *
 * # Safety
 * `dev` is NULL or a handle from devfd_open() not yet closed, and no other thread uses it.
 */
void devfd_close(struct devfd_device *dev);

/**
 * The device's description, borrowed until devfd_close().
 *
 * # Safety
 * `dev` is NULL or a live handle.
 */
const struct devfd_desc *devfd_device_desc(const struct devfd_device *dev);

/**
 * A file descriptor to poll(2)/epoll for POLLPRI (an interrupt is pending), or -EINVAL.
 * Owned by the device: do not close it.
 *
 * # Safety
 * `dev` is NULL or a live handle.
 */
int devfd_fd(const struct devfd_device *dev);

/**
 * Reads the 8-bit register at `offset` in region `region` into `*value`.
 *
 * # Safety
 * `dev` is NULL or a live handle; `value` is valid for a write.
 */
int devfd_read8(const struct devfd_device *dev, uint32_t region, uint64_t offset, uint8_t *value);

/**
 * Writes the 8-bit register at `offset` in region `region`.
 *
 * # Safety
 * `dev` is NULL or a live handle.
 */
int devfd_write8(const struct devfd_device *dev, uint32_t region, uint64_t offset, uint8_t value);

/**
 * Reads the 16-bit register at `offset` in region `region` into `*value`.
 *
 * # Safety
 * `dev` is NULL or a live handle; `value` is valid for a write.
 */
int devfd_read16(const struct devfd_device *dev, uint32_t region, uint64_t offset, uint16_t *value);

/**
 * Writes the 16-bit register at `offset` in region `region`.
 *
 * # Safety
 * `dev` is NULL or a live handle.
 */
int devfd_write16(const struct devfd_device *dev, uint32_t region, uint64_t offset, uint16_t value);

/**
 * Reads the 32-bit register at `offset` in region `region` into `*value`.
 *
 * # Safety
 * `dev` is NULL or a live handle; `value` is valid for a write.
 */
int devfd_read32(const struct devfd_device *dev, uint32_t region, uint64_t offset, uint32_t *value);

/**
 * Writes the 32-bit register at `offset` in region `region`.
 *
 * # Safety
 * `dev` is NULL or a live handle.
 */
int devfd_write32(const struct devfd_device *dev, uint32_t region, uint64_t offset, uint32_t value);

/**
 * Reads the 64-bit register at `offset` in region `region` into `*value`.
 *
 * # Safety
 * `dev` is NULL or a live handle; `value` is valid for a write.
 */
int devfd_read64(const struct devfd_device *dev, uint32_t region, uint64_t offset, uint64_t *value);

/**
 * Writes the 64-bit register at `offset` in region `region`.
 *
 * # Safety
 * `dev` is NULL or a live handle.
 */
int devfd_write64(const struct devfd_device *dev, uint32_t region, uint64_t offset, uint64_t value);

/**
 * Reads `len` bytes at `offset` of region `region` into `buf`: any length on a memory-like
 * region; on a register-like one, split into the widest naturally aligned accesses (up to
 * 4 bytes) the region accepts.
 *
 * The whole access is checked first, so these failures have no effect on the device:
 * -EINVAL (NULL `dev`, NULL `buf` with `len` > 0, or a register access that cannot be split
 * into accepted widths), -ENOENT (no such region), -ENXIO (runs past the region's end),
 * -EPERM (the region is not readable). `len` 0 succeeds with no effect. An error from the
 * device part-way through (-EIO, -ETIMEDOUT, -ENOTCONN, -EINTR) is returned after earlier
 * pieces were transferred: devfd_read_counted() says how many bytes.
 *
 * # Safety
 * `dev` is NULL or a live handle; `buf` is valid for writes of `len` bytes.
 */
int devfd_read(const struct devfd_device *dev,
               uint32_t region,
               uint64_t offset,
               void *buf,
               size_t len);

/**
 * devfd_read(), also storing in `*done` (if not NULL) the bytes read, on success and failure.
 *
 * # Safety
 * As devfd_read(); `done` is NULL or valid for a write.
 */
int devfd_read_counted(const struct devfd_device *dev,
                       uint32_t region,
                       uint64_t offset,
                       void *buf,
                       size_t len,
                       size_t *done);

/**
 * Writes `len` bytes from `buf` at `offset` of region `region`, split and checked as
 * devfd_read() does: -EINVAL, -ENOENT, -ENXIO and -EPERM (not writable) have no effect;
 * `len` 0 succeeds with no effect; a device error part-way is returned after earlier pieces
 * reached the device (devfd_write_counted() says how many bytes).
 *
 * # Safety
 * `dev` is NULL or a live handle; `buf` is valid for reads of `len` bytes.
 */
int devfd_write(const struct devfd_device *dev,
                uint32_t region,
                uint64_t offset,
                const void *buf,
                size_t len);

/**
 * devfd_write(), also storing in `*done` (if not NULL) the bytes that reached the device.
 *
 * # Safety
 * As devfd_write(); `done` is NULL or valid for a write.
 */
int devfd_write_counted(const struct devfd_device *dev,
                        uint32_t region,
                        uint64_t offset,
                        const void *buf,
                        size_t len,
                        size_t *done);

/**
 * Maps a whole mmap-capable region shared and coherent with the device; stores the address
 * and length. Unmapped by devfd_unmap() or devfd_close().
 *
 * # Safety
 * `dev` is NULL or a live handle; `addr` and `len` are valid for writes.
 */
int devfd_map(const struct devfd_device *dev, uint32_t region, void **addr, size_t *len);

/**
 * Maps `len` bytes (rounded up to whole pages) at `offset` of region `region`, shared and
 * coherent with the device; stores the address. `offset` is a multiple of 4096 and the range
 * lies inside one mappable area (devfd_desc_mmap_area()). Unmapped by devfd_unmap() or
 * devfd_close().
 *
 * Returns 0; -EINVAL (a NULL argument, or `offset` not page-aligned); -ENOENT (no such
 * region, or it is not mappable); -ENXIO (the range is not inside one area); -EACCES; -ENODEV
 * (the server cannot map it); -ENOMEM.
 *
 * # Safety
 * `dev` is NULL or a live handle; `addr` is valid for a write.
 */
int devfd_map_range(const struct devfd_device *dev,
                    uint32_t region,
                    uint64_t offset,
                    size_t len,
                    void **addr);

/**
 * Unmaps a mapping made by devfd_map() or devfd_map_range(); -ENOENT if `addr` is not one.
 *
 * # Safety
 * `dev` is NULL or a live handle; nothing uses the mapping any more.
 */
int devfd_unmap(const struct devfd_device *dev, void *addr);

/**
 * Waits up to `timeout_ms` (negative: forever) for interrupt `index` (POLLPRI on the file);
 * stores the number of events (summed over its vectors) in `*events`. Reading the counters
 * resets them to 0 for this handle only; it does not acknowledge anything: for a
 * DEVFD_IRQ_AUTOMASKED interrupt call devfd_irq_unmask() after servicing the device (see
 * the top of this header). An event that fired before the handle was opened and is still
 * outstanding is counted (1).
 *
 * Returns 0; -EINVAL (NULL `dev`); -ENOENT (no such interrupt); -ETIMEDOUT (no event in
 * time); -EINTR; -ENOTCONN (server gone); -EIO.
 *
 * # Safety
 * `dev` is NULL or a live handle; `events` is NULL or valid for a write.
 */
int devfd_wait_irq(const struct devfd_device *dev,
                   uint32_t index,
                   int timeout_ms,
                   uint64_t *events);

/**
 * Reads (and resets) the event counter of one vector.
 *
 * # Safety
 * `dev` is NULL or a live handle; `events` is valid for a write.
 */
int devfd_irq_count(const struct devfd_device *dev,
                    uint32_t index,
                    uint32_t vector,
                    uint64_t *events);

/**
 * The status word of one vector (SPEC.md 6.3, a 1.1 server): DEVFD_IRQ_STATUS_PENDING,
 * DEVFD_IRQ_STATUS_UNACKED, DEVFD_IRQ_STATUS_ASSERTED bits, shared by all opens; a 1.0
 * server reports 0. Does not change any counter.
 *
 * Returns 0; -EINVAL (a NULL argument); -ENOENT (no such interrupt or vector); -ENOTCONN,
 * -EIO, -ETIMEDOUT from the server.
 *
 * # Safety
 * `dev` is NULL or a live handle; `status` is valid for a write.
 */
int devfd_irq_status(const struct devfd_device *dev,
                     uint32_t index,
                     uint32_t vector,
                     uint32_t *status);

/**
 * Masks one vector of an interrupt.
 *
 * # Safety
 * `dev` is NULL or a live handle.
 */
int devfd_irq_mask(const struct devfd_device *dev, uint32_t index, uint32_t vector);

/**
 * Resets the device to its power-on state through its reset word (format 1.2). Returns 0;
 * -ENOTSUP if the device has no reset word; -EIO if the device failed the reset;
 * -ETIMEDOUT; -EINVAL (`dev` NULL).
 *
 * # Safety
 * `dev` is NULL or a live handle.
 */
int devfd_reset(const struct devfd_device *dev);

/**
 * Unmasks (acknowledges) one vector of an interrupt.
 *
 * # Safety
 * `dev` is NULL or a live handle.
 */
int devfd_irq_unmask(const struct devfd_device *dev, uint32_t index, uint32_t vector);

/** An initialiser for a devfd_resource: argsz set, every other field 0. */
#define DEVFD_RESOURCE_INIT { (uint32_t)sizeof(devfd_resource), 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 }

#ifdef __cplusplus
}
#endif

#endif /* DEVFD_H */
