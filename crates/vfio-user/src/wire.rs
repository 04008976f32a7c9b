//! The vfio-user wire format (QEMU `docs/interop/vfio-user.rst`): the message header, every
//! fixed payload as a `#[repr(C)]` struct of unaligned host-endian fields, and the constants
//! beside them. Payload structs are the part that follows the 16-byte header.

use zerocopy::native_endian::{U16, U32, U64};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The protocol major version devfd speaks.
pub const VERSION_MAJOR: u16 = 0;
/// The highest minor version devfd speaks.
pub const VERSION_MINOR: u16 = 1;

/// `VFIO_USER_VERSION`: version and capabilities handshake.
pub const CMD_VERSION: u16 = 1;
/// `VFIO_USER_DMA_MAP`: the client shares memory the device may reach.
pub const CMD_DMA_MAP: u16 = 2;
/// `VFIO_USER_DMA_UNMAP`.
pub const CMD_DMA_UNMAP: u16 = 3;
/// `VFIO_USER_DEVICE_GET_INFO`.
pub const CMD_DEVICE_GET_INFO: u16 = 4;
/// `VFIO_USER_DEVICE_GET_REGION_INFO`.
pub const CMD_DEVICE_GET_REGION_INFO: u16 = 5;
/// `VFIO_USER_DEVICE_GET_REGION_IO_FDS`.
pub const CMD_DEVICE_GET_REGION_IO_FDS: u16 = 6;
/// `VFIO_USER_DEVICE_GET_IRQ_INFO`.
pub const CMD_DEVICE_GET_IRQ_INFO: u16 = 7;
/// `VFIO_USER_DEVICE_SET_IRQS`.
pub const CMD_DEVICE_SET_IRQS: u16 = 8;
/// `VFIO_USER_REGION_READ`.
pub const CMD_REGION_READ: u16 = 9;
/// `VFIO_USER_REGION_WRITE`.
pub const CMD_REGION_WRITE: u16 = 10;
/// `VFIO_USER_DMA_READ` (server to client).
pub const CMD_DMA_READ: u16 = 11;
/// `VFIO_USER_DMA_WRITE` (server to client).
pub const CMD_DMA_WRITE: u16 = 12;
/// `VFIO_USER_DEVICE_RESET`.
pub const CMD_DEVICE_RESET: u16 = 13;
/// `VFIO_USER_DIRTY_PAGES` (removed from the protocol; answered "not supported").
pub const CMD_DIRTY_PAGES: u16 = 14;
/// `VFIO_USER_REGION_WRITE_MULTI`.
pub const CMD_REGION_WRITE_MULTI: u16 = 15;
/// `VFIO_USER_DEVICE_FEATURE`.
pub const CMD_DEVICE_FEATURE: u16 = 16;
/// `VFIO_USER_MIG_DATA_READ`.
pub const CMD_MIG_DATA_READ: u16 = 17;
/// `VFIO_USER_MIG_DATA_WRITE`.
pub const CMD_MIG_DATA_WRITE: u16 = 18;

/// Header flags, bits 0–3: the message type.
pub const FLAGS_TYPE_MASK: u32 = 0xf;
/// Type: a command.
pub const FLAGS_COMMAND: u32 = 0;
/// Type: a reply.
pub const FLAGS_REPLY: u32 = 1;
/// The sender wants no reply.
pub const FLAGS_NO_REPLY: u32 = 1 << 4;
/// The reply reports an error (its `error` field holds an errno).
pub const FLAGS_ERROR: u32 = 1 << 5;
/// Every flag bit this version defines.
pub const FLAGS_KNOWN: u32 = FLAGS_TYPE_MASK | FLAGS_NO_REPLY | FLAGS_ERROR;

/// The 16-byte header of every message.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct Header {
    /// Chosen by the sender, echoed in the reply.
    pub id: U16,
    /// `CMD_*`.
    pub command: U16,
    /// Size of the whole message, header included.
    pub size: U32,
    /// `FLAGS_*`.
    pub flags: U32,
    /// In a reply with [`FLAGS_ERROR`]: an errno (may be 0).
    pub error: U32,
}
/// Size of [`Header`].
pub const HEADER_LEN: usize = 16;

/// VERSION's fixed part; a NUL-terminated JSON object follows.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct Version {
    /// Major version.
    pub major: U16,
    /// Minor version.
    pub minor: U16,
}

/// DMA_MAP request (32 bytes); an fd in the ancillary data makes the memory mappable.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct DmaMap {
    /// Size of this structure.
    pub argsz: U32,
    /// `DMA_FLAG_*`.
    pub flags: U32,
    /// Offset of the memory in the fd.
    pub offset: U64,
    /// DMA (bus) address of the first byte.
    pub address: U64,
    /// Size in bytes.
    pub size: U64,
}
/// DMA_MAP: the device may read the memory.
pub const DMA_FLAG_READ: u32 = 1 << 0;
/// DMA_MAP: the device may write the memory.
pub const DMA_FLAG_WRITE: u32 = 1 << 1;

/// DMA_UNMAP request and reply (24 bytes).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct DmaUnmap {
    /// Maximum reply payload size.
    pub argsz: U32,
    /// `DMA_UNMAP_FLAG_*`.
    pub flags: U32,
    /// DMA address of the mapping.
    pub address: U64,
    /// Its size.
    pub size: U64,
}
/// DMA_UNMAP: with a dirty bitmap (not supported: no dirty-page tracking).
pub const DMA_UNMAP_FLAG_GET_DIRTY_BITMAP: u32 = 1 << 0;
/// DMA_UNMAP: every mapping (`address` and `size` are 0).
pub const DMA_UNMAP_FLAG_ALL: u32 = 1 << 1;

/// DEVICE_GET_INFO request and reply (16 bytes), `struct vfio_device_info`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct DeviceInfo {
    /// Request: maximum reply size; reply: the size needed.
    pub argsz: U32,
    /// `DEVICE_FLAGS_*`.
    pub flags: U32,
    /// Number of regions.
    pub num_regions: U32,
    /// Number of irq indices.
    pub num_irqs: U32,
}
/// DEVICE_GET_INFO: the device supports DEVICE_RESET.
pub const DEVICE_FLAGS_RESET: u32 = 1 << 0;
/// DEVICE_GET_INFO: a PCI device.
pub const DEVICE_FLAGS_PCI: u32 = 1 << 1;

/// DEVICE_GET_REGION_INFO request and reply head (32 bytes), `struct vfio_region_info`;
/// a capability chain may follow in the reply.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct RegionInfo {
    /// Request: maximum reply size; reply: the size needed (capabilities included).
    pub argsz: U32,
    /// `REGION_FLAG_*`.
    pub flags: U32,
    /// Region index.
    pub index: U32,
    /// Offset of the first capability from the start of this structure (0: none).
    pub cap_offset: U32,
    /// Region size.
    pub size: U64,
    /// The mmap offset in the region's fd (mappable regions).
    pub offset: U64,
}
/// Region: the client may read it.
pub const REGION_FLAG_READ: u32 = 1 << 0;
/// Region: the client may write it.
pub const REGION_FLAG_WRITE: u32 = 1 << 1;
/// Region: the client may mmap the fd sent with the reply.
pub const REGION_FLAG_MMAP: u32 = 1 << 2;
/// Region: the reply has a capability chain.
pub const REGION_FLAG_CAPS: u32 = 1 << 3;

/// The header of a capability in a region info reply, `struct vfio_info_cap_header`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct CapHeader {
    /// `CAP_*`.
    pub id: U16,
    /// Capability version.
    pub version: U16,
    /// Offset of the next capability from the start of the region info (0: last).
    pub next: U32,
}
/// Capability: the mappable parts of a region.
pub const CAP_SPARSE_MMAP: u16 = 1;
/// Capability: a device-specific region's type.
pub const CAP_TYPE: u16 = 2;

/// The sparse-mmap capability's body after its header; `nr_areas` [`SparseArea`]s follow.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct SparseMmap {
    /// Number of areas.
    pub nr_areas: U32,
    /// Reserved, 0.
    pub reserved: U32,
}

/// One mappable area of a sparse region, relative to the region.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct SparseArea {
    /// Offset in the region.
    pub offset: U64,
    /// Size.
    pub size: U64,
}

/// DEVICE_GET_REGION_IO_FDS request and reply head (16 bytes); sub-regions follow.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct RegionIoFds {
    /// Request: maximum reply size; reply: the size needed.
    pub argsz: U32,
    /// 0.
    pub flags: U32,
    /// Region index.
    pub index: U32,
    /// Number of sub-regions.
    pub count: U32,
}

/// DEVICE_GET_IRQ_INFO request and reply (16 bytes), `struct vfio_irq_info`.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct IrqInfo {
    /// Request: maximum reply size; reply: the size needed.
    pub argsz: U32,
    /// `IRQ_INFO_*`.
    pub flags: U32,
    /// Irq index.
    pub index: U32,
    /// Number of vectors.
    pub count: U32,
}
/// Irq: signalled through eventfds.
pub const IRQ_INFO_EVENTFD: u32 = 1 << 0;
/// Irq: MASK and UNMASK actions work.
pub const IRQ_INFO_MASKABLE: u32 = 1 << 1;
/// Irq: masks itself when it fires; the client unmasks it.
pub const IRQ_INFO_AUTOMASKED: u32 = 1 << 2;
/// Irq: vectors are set up as a whole.
pub const IRQ_INFO_NORESIZE: u32 = 1 << 3;

/// DEVICE_SET_IRQS request head (20 bytes), `struct vfio_irq_set`; with
/// [`IRQ_SET_DATA_BOOL`], `count` bytes follow; with [`IRQ_SET_DATA_EVENTFD`], `count` fds
/// come in the ancillary data.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct IrqSet {
    /// Size of the request payload.
    pub argsz: U32,
    /// One `IRQ_SET_DATA_*` and one `IRQ_SET_ACTION_*`.
    pub flags: U32,
    /// Irq index.
    pub index: U32,
    /// First vector.
    pub start: U32,
    /// Number of vectors.
    pub count: U32,
}
/// SET_IRQS data: none.
pub const IRQ_SET_DATA_NONE: u32 = 1 << 0;
/// SET_IRQS data: one bool byte per vector.
pub const IRQ_SET_DATA_BOOL: u32 = 1 << 1;
/// SET_IRQS data: one eventfd per vector (none: de-assign).
pub const IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
/// SET_IRQS action: mask.
pub const IRQ_SET_ACTION_MASK: u32 = 1 << 3;
/// SET_IRQS action: unmask.
pub const IRQ_SET_ACTION_UNMASK: u32 = 1 << 4;
/// SET_IRQS action: trigger.
pub const IRQ_SET_ACTION_TRIGGER: u32 = 1 << 5;
/// The data bits.
pub const IRQ_SET_DATA_MASK: u32 = IRQ_SET_DATA_NONE | IRQ_SET_DATA_BOOL | IRQ_SET_DATA_EVENTFD;
/// The action bits.
pub const IRQ_SET_ACTION_MASK_BITS: u32 =
    IRQ_SET_ACTION_MASK | IRQ_SET_ACTION_UNMASK | IRQ_SET_ACTION_TRIGGER;

/// REGION_READ and REGION_WRITE head (16 bytes); data follows in a read's reply and a
/// write's request.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct RegionAccess {
    /// Offset in the region.
    pub offset: U64,
    /// Region index.
    pub region: U32,
    /// Bytes.
    pub count: U32,
}

/// One write of REGION_WRITE_MULTI (24 bytes): up to 8 bytes of data.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct WriteMultiEntry {
    /// Offset in the region.
    pub offset: U64,
    /// Region index.
    pub region: U32,
    /// Bytes (1 to 8).
    pub count: U32,
    /// The data, in its first `count` bytes.
    pub data: [u8; 8],
}

/// DMA_READ and DMA_WRITE head (16 bytes); data follows in a read's reply and a write's
/// request.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    FromBytes,
    IntoBytes,
    KnownLayout,
    Immutable,
    Unaligned,
)]
#[repr(C)]
pub struct DmaAccess {
    /// DMA address.
    pub address: U64,
    /// Bytes.
    pub count: U64,
}

/// VFIO's PCI region indices: BARs 0–5, then these.
pub const PCI_ROM_REGION: u32 = 6;
/// The configuration-space region index.
pub const PCI_CONFIG_REGION: u32 = 7;
/// The VGA region index.
pub const PCI_VGA_REGION: u32 = 8;
/// Regions a PCI device reports (`VFIO_PCI_NUM_REGIONS`).
pub const PCI_NUM_REGIONS: u32 = 9;
/// VFIO's PCI irq indices.
pub const PCI_INTX_IRQ: u32 = 0;
/// MSI.
pub const PCI_MSI_IRQ: u32 = 1;
/// MSI-X.
pub const PCI_MSIX_IRQ: u32 = 2;
/// Error reporting.
pub const PCI_ERR_IRQ: u32 = 3;
/// Device request.
pub const PCI_REQ_IRQ: u32 = 4;
/// Irq indices a PCI device reports (`VFIO_PCI_NUM_IRQS`).
pub const PCI_NUM_IRQS: u32 = 5;

/// The largest REGION_READ/WRITE and DMA_READ/WRITE `count` devfd accepts and advertises
/// (`max_data_xfer_size`, the protocol's default).
pub const MAX_DATA_XFER: usize = 1 << 20;
/// The most fds devfd accepts in one message (`max_msg_fds`).
pub const MAX_MSG_FDS: usize = 16;
/// The most DMA mappings at once (`max_dma_maps`).
pub const MAX_DMA_MAPS: usize = 1024;
/// The page size of DMA mappings (`pgsizes`).
pub const DMA_PAGE_SIZE: u64 = 4096;
/// The largest message devfd accepts: a header, an access head and the largest data.
pub const MAX_MESSAGE: usize = HEADER_LEN + 16 + MAX_DATA_XFER;
