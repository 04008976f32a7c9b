//! Why a VFIO device could not be opened or described.

use std::io;
use std::path::PathBuf;

use crate::caps::CapError;

/// Errors of this crate.
#[derive(Debug, thiserror::Error)]
pub enum VfioError {
    /// Not a PCI address of this machine.
    #[error("no PCI function {bdf} in /sys/bus/pci/devices")]
    NoSuchDevice {
        /// The address asked for.
        bdf: String,
    },
    /// The function is not bound to vfio-pci.
    #[error(
        "{bdf} is bound to {}, not vfio-pci; to hand it to VFIO: echo vfio-pci > \
         /sys/bus/pci/devices/{bdf}/driver_override; echo {bdf} > \
         /sys/bus/pci/drivers/{}/unbind; echo {bdf} > /sys/bus/pci/drivers_probe",
        driver.as_deref().unwrap_or("no driver"),
        driver.as_deref().unwrap_or("DRIVER")
    )]
    NotVfio {
        /// The address.
        bdf: String,
        /// The driver bound now, if any.
        driver: Option<String>,
    },
    /// The function has no IOMMU group (no IOMMU, or VFIO without no-IOMMU mode).
    #[error("{bdf} has no IOMMU group: the machine needs an IOMMU (intel_iommu=on) for VFIO")]
    NoGroup {
        /// The address.
        bdf: String,
    },
    /// A VFIO file could not be opened.
    #[error("opening {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// The kernel speaks another VFIO API version.
    #[error("VFIO API version {0}, expected 0")]
    ApiVersion(i32),
    /// No type-1 IOMMU.
    #[error("the VFIO container supports no type-1 IOMMU")]
    NoType1,
    /// Not every device of the group is bound to vfio-pci (or unbound).
    #[error("IOMMU group {group} is not viable: bind every device of it to vfio-pci")]
    NotViable {
        /// The group number.
        group: u32,
    },
    /// An ioctl failed.
    #[error("{call} for {what}")]
    Ioctl {
        /// The ioctl.
        call: &'static str,
        /// What it was about, e.g. "region 3" or "group 7".
        what: String,
        /// Its error.
        source: io::Error,
    },
    /// The kernel's answer was malformed.
    #[error("region {index}: the kernel's region info is malformed")]
    RegionInfo {
        /// Region index.
        index: u32,
        /// What is wrong.
        source: CapError,
    },
    /// The device is not a PCI device (platform VFIO devices are not supported).
    #[error("{0} is not a VFIO PCI device")]
    NotPci(String),
    /// Reading configuration space failed.
    #[error("{bdf}: reading configuration space")]
    Config {
        /// The address.
        bdf: String,
        /// Why.
        source: io::Error,
    },
    /// The description could not be built.
    #[error("building the description")]
    Build(#[from] devfd_format::model::BuildError),
    /// The description does not parse (a bug).
    #[error("the built description does not parse")]
    Parse(#[from] devfd_format::Error),
    /// DMA memory could not be made or mapped.
    #[error("DMA window of {size} bytes")]
    Dma {
        /// Requested size.
        size: u64,
        /// Why.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The interrupt thread could not start.
    #[error("starting the interrupt thread")]
    Thread(#[source] io::Error),
}
