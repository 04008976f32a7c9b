//! Opening devices through the group/container API: one container (with a type-1 IOMMU) for
//! all the devices a server opens, one open group per IOMMU group.

use std::collections::HashMap;
use std::ffi::CString;
use std::fs::{File, OpenOptions};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use vfio_bindings::bindings::vfio::{
    VFIO_GROUP_FLAGS_VIABLE, VFIO_TYPE1_IOMMU, VFIO_TYPE1v2_IOMMU,
};

use crate::VfioError;
use crate::ioctl;

/// Where sysfs keeps PCI functions.
pub const SYSFS_PCI: &str = "/sys/bus/pci/devices";

/// A VFIO container and the groups attached to it.
#[derive(Debug)]
pub struct Container {
    file: File,
    groups: HashMap<u32, File>,
    iommu_set: bool,
}

fn open_rw(path: &Path) -> Result<File, VfioError> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| VfioError::Open {
            path: path.to_owned(),
            source,
        })
}

fn ioctl_err(
    call: &'static str,
    what: impl Into<String>,
) -> impl FnOnce(std::io::Error) -> VfioError {
    let what = what.into();
    move |source| VfioError::Ioctl { call, what, source }
}

/// The driver bound to a PCI function, if any.
pub fn bound_driver(bdf: &str) -> Option<String> {
    let link = std::fs::read_link(Path::new(SYSFS_PCI).join(bdf).join("driver")).ok()?;
    Some(link.file_name()?.to_string_lossy().into_owned())
}

/// The IOMMU group number of a PCI function.
pub fn iommu_group(bdf: &str) -> Result<u32, VfioError> {
    let dir = Path::new(SYSFS_PCI).join(bdf);
    if !dir.exists() {
        return Err(VfioError::NoSuchDevice { bdf: bdf.into() });
    }
    std::fs::read_link(dir.join("iommu_group"))
        .ok()
        .and_then(|l| l.file_name()?.to_str()?.parse().ok())
        .ok_or_else(|| VfioError::NoGroup { bdf: bdf.into() })
}

impl Container {
    /// Opens `/dev/vfio/vfio` and checks the API version and type-1 support.
    pub fn new() -> Result<Self, VfioError> {
        let file = open_rw(Path::new("/dev/vfio/vfio"))?;
        let version = ioctl::get_api_version(file.as_fd())
            .map_err(ioctl_err("VFIO_GET_API_VERSION", "the container"))?;
        if version != 0 {
            return Err(VfioError::ApiVersion(version));
        }
        let v2 = ioctl::check_extension(file.as_fd(), VFIO_TYPE1v2_IOMMU).unwrap_or(false);
        let v1 = ioctl::check_extension(file.as_fd(), VFIO_TYPE1_IOMMU).unwrap_or(false);
        if !v2 && !v1 {
            return Err(VfioError::NoType1);
        }
        Ok(Container {
            file,
            groups: HashMap::new(),
            iommu_set: false,
        })
    }

    /// The container descriptor (for DMA mapping).
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.file.as_fd()
    }

    /// Opens the device at PCI address `bdf` (which must be bound to vfio-pci), attaching its
    /// group to this container first.
    pub fn open_device(&mut self, bdf: &str) -> Result<OwnedFd, VfioError> {
        let group = iommu_group(bdf)?;
        match bound_driver(bdf) {
            Some(d) if d == "vfio-pci" => {}
            driver => {
                return Err(VfioError::NotVfio {
                    bdf: bdf.into(),
                    driver,
                });
            }
        }
        if !self.groups.contains_key(&group) {
            let path = PathBuf::from(format!("/dev/vfio/{group}"));
            let file = open_rw(&path)?;
            let flags = ioctl::group_get_status(file.as_fd())
                .map_err(ioctl_err("VFIO_GROUP_GET_STATUS", format!("group {group}")))?;
            if flags & VFIO_GROUP_FLAGS_VIABLE == 0 {
                return Err(VfioError::NotViable { group });
            }
            ioctl::group_set_container(file.as_fd(), self.file.as_fd()).map_err(ioctl_err(
                "VFIO_GROUP_SET_CONTAINER",
                format!("group {group}"),
            ))?;
            if !self.iommu_set {
                let v2 =
                    ioctl::check_extension(self.file.as_fd(), VFIO_TYPE1v2_IOMMU).unwrap_or(false);
                let iommu = if v2 {
                    VFIO_TYPE1v2_IOMMU
                } else {
                    VFIO_TYPE1_IOMMU
                };
                ioctl::set_iommu(self.file.as_fd(), iommu)
                    .map_err(ioctl_err("VFIO_SET_IOMMU", "the container"))?;
                self.iommu_set = true;
            }
            self.groups.insert(group, file);
        }
        let group_file = self
            .groups
            .get(&group)
            .ok_or(VfioError::NotViable { group })?;
        let name = CString::new(bdf).map_err(|_| VfioError::NoSuchDevice { bdf: bdf.into() })?;
        ioctl::group_get_device_fd(group_file.as_fd(), &name)
            .map_err(ioctl_err("VFIO_GROUP_GET_DEVICE_FD", bdf.to_owned()))
    }
}
