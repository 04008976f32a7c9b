//! Emulated models for device-tree nodes, keyed by `compatible` string: a node described by
//! the device-tree source (crate `devfd-dtb`) is served by the model of its most specific
//! `compatible` entry that has one.
//!
//! A model takes the description derived from the node — its regions (one per `reg` entry)
//! and its interrupts — checks that the node gives it what its registers need, and adds only
//! what it knows about itself: its device label and the access widths its registers accept.

use std::sync::Arc;

use devfd_device::Device;
use devfd_format::AccessWidths;
use devfd_format::model::DeviceDesc;
use devfd_format::wire::WIDTH_4;

use crate::pl011::{LineSink, Pl011, Pl011Options};
use crate::{EmuError, Pl031, Pl031Options};

/// What the command line hands every model; each uses what applies to it.
#[derive(Debug, Clone, Default)]
pub struct DtModelOptions {
    /// PL011: where transmitted lines go (default: standard error).
    pub uart: Option<Pl011Options>,
    /// PL031: how it starts (default: counting from the host's time).
    pub rtc: Option<Pl031Options>,
}

/// Makes a model's device from a node's description.
type Make = fn(DeviceDesc, &DtModelOptions) -> Result<Arc<dyn Device>, EmuError>;

/// A model for nodes with one `compatible` string.
#[derive(Debug, Clone, Copy)]
pub struct DtModel {
    /// The `compatible` entry it emulates, e.g. `arm,pl031`.
    pub compatible: &'static str,
    /// The model's kind, as [`Device::kind`] reports it.
    pub kind: &'static str,
    /// The DEVICE label it gives the description (`devfd serve` names the file after it).
    pub label: &'static str,
    make: Make,
}

impl DtModel {
    /// Makes the device for a node from the node's description.
    pub fn make(
        &self,
        desc: DeviceDesc,
        options: &DtModelOptions,
    ) -> Result<Arc<dyn Device>, EmuError> {
        (self.make)(desc, options)
    }
}

/// Every device-tree model, first match wins.
pub const DT_MODELS: &[DtModel] = &[
    DtModel {
        compatible: "arm,pl031",
        kind: "pl031",
        label: "rtc",
        make: make_pl031,
    },
    DtModel {
        compatible: "arm,pl011",
        kind: "pl011",
        label: "uart",
        make: make_pl011,
    },
];

/// The model for a node's `compatible` list (most specific first): the first entry that has
/// one. Generic entries such as `arm,primecell` have none.
pub fn dt_model<'a>(compatible: impl IntoIterator<Item = &'a str>) -> Option<&'static DtModel> {
    compatible
        .into_iter()
        .find_map(|c| DT_MODELS.iter().find(|m| m.compatible == c))
}

/// The node's description made the model's: region 0 must be a register block of at least
/// `size` bytes; the model's label and register widths are set, and it is laid out again.
fn adapt(
    mut desc: DeviceDesc,
    model: &'static str,
    label: &str,
    size: u64,
    widths: Option<AccessWidths>,
) -> Result<DeviceDesc, EmuError> {
    let unsuitable = |why: String| EmuError::UnsuitableNode { model, why };
    let Some(region) = desc.regions.iter_mut().find(|r| r.index == 0) else {
        return Err(unsuitable(
            "the node has no memory-mapped reg[0] for the registers".into(),
        ));
    };
    if region.size < size {
        return Err(unsuitable(format!(
            "reg[0] is {:#x} bytes, the registers need {size:#x}",
            region.size
        )));
    }
    region.access_widths = widths;
    if region.label.is_none() {
        region.label = Some("registers".into());
    }
    if desc.interrupts.len() > 1 {
        return Err(unsuitable(format!(
            "{} interrupts, the model has one",
            desc.interrupts.len()
        )));
    }
    desc.label = Some(label.into());
    desc.lay_out()
        .map_err(|e| EmuError::Build(devfd_format::model::BuildError::Write(e)))?;
    Ok(desc)
}

fn make_pl031(desc: DeviceDesc, options: &DtModelOptions) -> Result<Arc<dyn Device>, EmuError> {
    let desc = adapt(desc, "pl031", "rtc", 0x1000, AccessWidths::new(WIDTH_4))?;
    let options = options.rtc.clone().unwrap_or_default();
    Ok(Arc::new(Pl031::with_description(options, &desc)?))
}

fn make_pl011(desc: DeviceDesc, options: &DtModelOptions) -> Result<Arc<dyn Device>, EmuError> {
    let desc = adapt(
        desc,
        "pl011",
        "uart",
        crate::pl011::REGISTERS_SIZE,
        Pl011::access_widths(),
    )?;
    let options = options.uart.clone().unwrap_or_default();
    Ok(Arc::new(Pl011::with_description(options, &desc)?))
}

/// A sink for [`Pl011Options::output`] that prints `devfd: NAME: LINE` on standard error
/// ([`log_line`]).
pub fn stderr_lines(name: impl Into<String>) -> LineSink {
    let name = name.into();
    Arc::new(move |line: &[u8]| log_line(&name, line))
}

/// Prints one transmitted line on standard error as `devfd: NAME: LINE`, in one write, with
/// invalid UTF-8 replaced and control characters other than tab escaped (they would garble
/// the log).
pub fn log_line(name: &str, line: &[u8]) {
    use std::io::Write;
    let mut text = format!("devfd: {name}: ");
    for c in String::from_utf8_lossy(line).chars() {
        if c.is_control() && c != '\t' {
            text.extend(c.escape_default());
        } else {
            text.push(c);
        }
    }
    text.push('\n');
    // Never panics on a closed stderr: the UART must not take the server down.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use devfd_format::model::{DtLocation, InterruptDesc, RegionDesc};
    use devfd_format::wire::*;

    /// What devfd-dtb derives from a node: one region, one interrupt, DT detail.
    fn node_desc(compatible: &[&str], size: u64) -> DeviceDesc {
        let mut d = DeviceDesc::new(devfd_format::Bus::Platform);
        d.compatible = compatible.iter().map(|s| s.to_string()).collect();
        d.label = Some("node".into());
        let mut dt = DtLocation::new("/n@0", DT_PROP_REG, 0);
        dt.address = Some(0x900_0000);
        d.regions.push(RegionDesc {
            index: 0,
            offset: 0,
            size,
            flags: REGION_READ | REGION_WRITE,
            location: Default::default(),
            dt: Some(dt),
            label: None,
            sparse: None,
            dma_address: None,
            access_widths: None,
        });
        d.interrupts.push(InterruptDesc {
            index: 0,
            count: 1,
            kind: IRQ_KIND_WIRED,
            flags: IRQ_LEVEL | IRQ_MASKABLE | IRQ_AUTOMASKED,
            control_offset: 0,
            dt: Some(DtLocation::new("/n@0", DT_PROP_INTERRUPTS, 0)),
            label: None,
        });
        d.lay_out().unwrap();
        d
    }

    #[test]
    fn lookup_by_most_specific_compatible() {
        assert_eq!(
            dt_model(["arm,pl031", "arm,primecell"]).unwrap().kind,
            "pl031"
        );
        assert_eq!(dt_model(["vendor,x", "arm,pl011"]).unwrap().kind, "pl011");
        assert!(dt_model(["arm,primecell"]).is_none());
        assert!(dt_model(["virtio,mmio"]).is_none());
        assert!(dt_model([]).is_none());
    }

    #[test]
    fn models_take_the_node_description() {
        for (compat, kind, label, widths) in [
            ("arm,pl031", "pl031", "rtc", WIDTH_4),
            ("arm,pl011", "pl011", "uart", WIDTH_1 | WIDTH_2 | WIDTH_4),
        ] {
            let m = dt_model([compat]).unwrap();
            let dev = m
                .make(node_desc(&[compat], 0x1000), &Default::default())
                .unwrap();
            assert_eq!(dev.kind(), kind);
            let d = devfd_format::parse(dev.description()).unwrap();
            assert_eq!(d.device().label(), Some(label));
            let r = d.region(0).unwrap();
            assert_eq!(r.access().map(|w| u32::from(w.bits())), Some(widths));
            assert_eq!(
                r.dt_address(),
                Some(0x900_0000),
                "the node's detail is kept"
            );
            assert_eq!(r.dt().unwrap().path, "/n@0");
            assert_eq!(d.interrupt(0).unwrap().dt().unwrap().path, "/n@0");
        }
    }

    #[test]
    fn unsuitable_nodes_are_refused_with_a_reason() {
        let m = dt_model(["arm,pl011"]).unwrap();
        let e = m
            .make(node_desc(&["arm,pl011"], 0x100), &Default::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("0x100 bytes"), "{e}");
        let mut d = node_desc(&["arm,pl031"], 0x1000);
        d.regions.clear();
        let e = dt_model(["arm,pl031"])
            .unwrap()
            .make(d, &Default::default())
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("reg[0]"), "{e}");
    }
}
