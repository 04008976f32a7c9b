//! Names of PCI class codes, as lspci prints them (the class section of pci.ids, which follows
//! the PCI Code and ID Assignment specification): the sub-class name when there is one, else
//! the base class name.

/// The name lspci gives a class code (`base << 16 | sub << 8 | prog-if`): `Ethernet
/// controller`, `Host bridge`, … For an unknown sub-class, the base class name; for an
/// unknown base class, `Class XXXX`.
pub fn class_name(class: u32) -> String {
    let base = ((class >> 16) & 0xff) as u8;
    let sub = ((class >> 8) & 0xff) as u8;
    match sub_class_name(base, sub).or_else(|| base_class_name(base)) {
        Some(name) => name.to_owned(),
        None => format!("Class {:04x}", (class >> 8) & 0xffff),
    }
}

/// The name of a base class.
pub fn base_class_name(base: u8) -> Option<&'static str> {
    Some(match base {
        0x00 => "Unclassified device",
        0x01 => "Mass storage controller",
        0x02 => "Network controller",
        0x03 => "Display controller",
        0x04 => "Multimedia controller",
        0x05 => "Memory controller",
        0x06 => "Bridge",
        0x07 => "Communication controller",
        0x08 => "Generic system peripheral",
        0x09 => "Input device controller",
        0x0a => "Docking station",
        0x0b => "Processor",
        0x0c => "Serial bus controller",
        0x0d => "Wireless controller",
        0x0e => "Intelligent controller",
        0x0f => "Satellite communications controller",
        0x10 => "Encryption controller",
        0x11 => "Signal processing controller",
        0x12 => "Processing accelerators",
        0x13 => "Non-Essential Instrumentation",
        0x40 => "Coprocessor",
        0xff => "Unassigned class",
        _ => return None,
    })
}

fn sub_class_name(base: u8, sub: u8) -> Option<&'static str> {
    Some(match (base, sub) {
        (0x00, 0x00) => "Non-VGA unclassified device",
        (0x00, 0x01) => "VGA compatible unclassified device",
        (0x00, 0x05) => "Image coprocessor",
        (0x01, 0x00) => "SCSI storage controller",
        (0x01, 0x01) => "IDE interface",
        (0x01, 0x02) => "Floppy disk controller",
        (0x01, 0x03) => "IPI bus controller",
        (0x01, 0x04) => "RAID bus controller",
        (0x01, 0x05) => "ATA controller",
        (0x01, 0x06) => "SATA controller",
        (0x01, 0x07) => "Serial Attached SCSI controller",
        (0x01, 0x08) => "Non-Volatile memory controller",
        (0x01, 0x09) => "Universal Flash Storage controller",
        (0x01, 0x80) => "Mass storage controller",
        (0x02, 0x00) => "Ethernet controller",
        (0x02, 0x01) => "Token ring network controller",
        (0x02, 0x02) => "FDDI network controller",
        (0x02, 0x03) => "ATM network controller",
        (0x02, 0x04) => "ISDN controller",
        (0x02, 0x05) => "WorldFip controller",
        (0x02, 0x06) => "PICMG controller",
        (0x02, 0x07) => "Infiniband controller",
        (0x02, 0x08) => "Fabric controller",
        (0x02, 0x80) => "Network controller",
        (0x03, 0x00) => "VGA compatible controller",
        (0x03, 0x01) => "XGA compatible controller",
        (0x03, 0x02) => "3D controller",
        (0x03, 0x80) => "Display controller",
        (0x04, 0x00) => "Multimedia video controller",
        (0x04, 0x01) => "Multimedia audio controller",
        (0x04, 0x02) => "Computer telephony device",
        (0x04, 0x03) => "Audio device",
        (0x04, 0x80) => "Multimedia controller",
        (0x05, 0x00) => "RAM memory",
        (0x05, 0x01) => "FLASH memory",
        (0x05, 0x02) => "CXL",
        (0x05, 0x80) => "Memory controller",
        (0x06, 0x00) => "Host bridge",
        (0x06, 0x01) => "ISA bridge",
        (0x06, 0x02) => "EISA bridge",
        (0x06, 0x03) => "MicroChannel bridge",
        (0x06, 0x04) => "PCI bridge",
        (0x06, 0x05) => "PCMCIA bridge",
        (0x06, 0x06) => "NuBus bridge",
        (0x06, 0x07) => "CardBus bridge",
        (0x06, 0x08) => "RACEway bridge",
        (0x06, 0x09) => "Semi-transparent PCI-to-PCI bridge",
        (0x06, 0x0a) => "InfiniBand to PCI host bridge",
        (0x06, 0x80) => "Bridge",
        (0x07, 0x00) => "Serial controller",
        (0x07, 0x01) => "Parallel controller",
        (0x07, 0x02) => "Multiport serial controller",
        (0x07, 0x03) => "Modem",
        (0x07, 0x04) => "GPIB controller",
        (0x07, 0x05) => "Smard Card controller",
        (0x07, 0x80) => "Communication controller",
        (0x08, 0x00) => "PIC",
        (0x08, 0x01) => "DMA controller",
        (0x08, 0x02) => "Timer",
        (0x08, 0x03) => "RTC",
        (0x08, 0x04) => "PCI Hot-plug controller",
        (0x08, 0x05) => "SD Host controller",
        (0x08, 0x06) => "IOMMU",
        (0x08, 0x80) => "System peripheral",
        (0x08, 0x99) => "Timing Card",
        (0x09, 0x00) => "Keyboard controller",
        (0x09, 0x01) => "Digitizer Pen",
        (0x09, 0x02) => "Mouse controller",
        (0x09, 0x03) => "Scanner controller",
        (0x09, 0x04) => "Gameport controller",
        (0x09, 0x80) => "Input device controller",
        (0x0a, 0x00) => "Generic Docking Station",
        (0x0a, 0x80) => "Docking Station",
        (0x0b, 0x00) => "386",
        (0x0b, 0x01) => "486",
        (0x0b, 0x02) => "Pentium",
        (0x0b, 0x10) => "Alpha",
        (0x0b, 0x20) => "Power PC",
        (0x0b, 0x30) => "MIPS",
        (0x0b, 0x40) => "Co-processor",
        (0x0c, 0x00) => "FireWire (IEEE 1394)",
        (0x0c, 0x01) => "ACCESS Bus",
        (0x0c, 0x02) => "SSA",
        (0x0c, 0x03) => "USB controller",
        (0x0c, 0x04) => "Fibre Channel",
        (0x0c, 0x05) => "SMBus",
        (0x0c, 0x06) => "InfiniBand",
        (0x0c, 0x07) => "IPMI Interface",
        (0x0c, 0x08) => "SERCOS interface",
        (0x0c, 0x09) => "CANBUS",
        (0x0c, 0x80) => "Serial bus controller",
        (0x0d, 0x00) => "IRDA controller",
        (0x0d, 0x01) => "Consumer IR controller",
        (0x0d, 0x10) => "RF controller",
        (0x0d, 0x11) => "Bluetooth",
        (0x0d, 0x12) => "Broadband",
        (0x0d, 0x20) => "802.1a controller",
        (0x0d, 0x21) => "802.1b controller",
        (0x0d, 0x80) => "Wireless controller",
        (0x0e, 0x00) => "I2O",
        (0x0f, 0x01) => "Satellite TV controller",
        (0x0f, 0x02) => "Satellite audio communication controller",
        (0x0f, 0x03) => "Satellite voice communication controller",
        (0x0f, 0x04) => "Satellite data communication controller",
        (0x10, 0x00) => "Network and computing encryption device",
        (0x10, 0x10) => "Entertainment encryption device",
        (0x10, 0x80) => "Encryption controller",
        (0x11, 0x00) => "DPIO module",
        (0x11, 0x01) => "Performance counters",
        (0x11, 0x10) => "Communication synchronizer",
        (0x11, 0x20) => "Signal processing management",
        (0x11, 0x80) => "Signal processing controller",
        (0x12, 0x00) => "Processing accelerators",
        (0x12, 0x01) => "SNIA Smart Data Accelerator Interface (SDXI) controller",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_lspci_prints_them() {
        assert_eq!(class_name(0x02_0000), "Ethernet controller");
        assert_eq!(class_name(0x01_8000), "Mass storage controller");
        assert_eq!(class_name(0x06_0000), "Host bridge");
        assert_eq!(class_name(0xff_ff00), "Unassigned class");
        assert_eq!(class_name(0x01_4201), "Mass storage controller");
        assert_eq!(class_name(0x77_1200), "Class 7712");
    }
}
