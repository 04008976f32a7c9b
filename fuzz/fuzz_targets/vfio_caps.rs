//! The kernel's VFIO answers as untrusted bytes: a region info with its capability chain, and
//! an IOMMU info with its IOVA ranges. Neither parser may panic or loop, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(info) = devfd_vfio::parse_region_info(data) {
        // What a parsed answer claims stays inside the bytes it came from.
        for cap in &info.caps {
            if let devfd_vfio::Capability::SparseMmap(areas) = cap {
                assert!(areas.len() * 16 <= data.len());
            }
        }
    }
    if let Some(ranges) = devfd_vfio::parse_iova_ranges(data) {
        assert!(ranges.len() * 16 <= data.len());
        let _ = devfd_vfio::place(&ranges, 1 << 20);
    }
});
