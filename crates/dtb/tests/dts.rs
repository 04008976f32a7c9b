//! Hand-written device trees, compiled with `dtc` at test time, for what QEMU's trees do not
//! have: nested non-identity `ranges`, `#size-cells = <0>`, `interrupts-extended` across
//! controllers, inherited interrupt parents, names as labels, and disabled nodes.

mod common;

use common::compile;
use devfd_dtb::{DeviceTree, Trigger};
use devfd_format::wire::*;

const RANGES: &str = r#"
/dts-v1/;
/ {
    #address-cells = <2>;
    #size-cells = <2>;

    soc {
        compatible = "simple-bus";
        #address-cells = <1>;
        #size-cells = <1>;
        /* soc 0x0.. is CPU 0x4000_0000.. */
        ranges = <0x0 0x0 0x40000000 0x10000000>;

        bridge@1000000 {
            compatible = "simple-bus";
            reg = <0x1000000 0x1000>;
            #address-cells = <1>;
            #size-cells = <1>;
            /* two windows: 0x0.. is soc 0x2000000.., 0x800000.. is soc 0x3000000.. */
            ranges = <0x0 0x2000000 0x100000
                      0x800000 0x3000000 0x1000>;

            uart@1000 {
                compatible = "ns16550a";
                reg = <0x1000 0x100>;
                reg-names = "regs";
            };
            timer@800800 {
                compatible = "vendor,timer";
                reg = <0x800800 0x10 0x800f00 0x100>;
                reg-names = "counter", "control";
            };
            hole@900000 {
                compatible = "vendor,hole";
                reg = <0x900000 0x10>;
            };
        };
    };

    bus64 {
        #address-cells = <2>;
        #size-cells = <1>;
        /* child 1:0 is CPU 0x8_0000_0000 */
        ranges = <0x1 0x0 0x8 0x0 0x10000>;
        dev@1,0 {
            compatible = "vendor,dev64";
            reg = <0x1 0x0 0x100>;
        };
        unmapped@2,0 {
            compatible = "vendor,unmapped";
            reg = <0x2 0x0 0x100>;
        };
    };

    noranges {
        #address-cells = <1>;
        #size-cells = <1>;
        dev@10 {
            compatible = "vendor,behind-a-bus-without-ranges";
            reg = <0x10 0x10>;
        };
    };
};
"#;

#[test]
fn nested_non_identity_ranges() {
    let dtb = compile(RANGES);
    let dt = DeviceTree::parse(&dtb).unwrap();
    let mapped = |path: &str| -> Vec<Option<(u64, u64)>> {
        dt.node(path)
            .unwrap_or_else(|| panic!("{path}"))
            .regs
            .iter()
            .map(|r| r.mapped())
            .collect()
    };
    // The bridge's own reg goes through the soc's ranges only.
    assert_eq!(mapped("/soc/bridge@1000000"), [Some((0x4100_0000, 0x1000))]);
    // Two levels: bridge window 1, then the soc.
    assert_eq!(
        mapped("/soc/bridge@1000000/uart@1000"),
        [Some((0x4200_1000, 0x100))]
    );
    // Bridge window 2, both entries.
    assert_eq!(
        mapped("/soc/bridge@1000000/timer@800800"),
        [Some((0x4300_0800, 0x10)), Some((0x4300_0f00, 0x100))]
    );
    // Between the windows: not memory-mapped, so no region.
    let hole = dt.node("/soc/bridge@1000000/hole@900000").unwrap();
    assert_eq!(hole.regs[0].address, None);
    assert_eq!(hole.regs[0].bus_address, 0x90_0000);
    assert!(!hole.is_device(), "no mapped reg and no interrupt");
    // Two-cell child addresses.
    assert_eq!(mapped("/bus64/dev@1,0"), [Some((0x8_0000_0000, 0x100))]);
    assert_eq!(mapped("/bus64/unmapped@2,0"), [None]);
    assert_eq!(
        dt.node("/bus64/dev@1,0").unwrap().regs[0].bus_address,
        1 << 32
    );
    // A bus without `ranges` is not memory-mapped at all.
    assert_eq!(mapped("/noranges/dev@10"), [None]);

    // The description: one REGION per mapped entry, named by reg-names, CPU address in
    // DT_ADDRESS, DT_INDEX the reg entry.
    let timer = dt.node("/soc/bridge@1000000/timer@800800").unwrap();
    let bytes = timer.build().unwrap();
    let d = devfd_format::parse(&bytes).unwrap();
    let regions: Vec<_> = d
        .regions()
        .map(|r| {
            (
                r.index,
                r.label(),
                r.dt_address(),
                r.size,
                r.dt().unwrap().index,
            )
        })
        .collect();
    assert_eq!(
        regions,
        [
            (0, Some("counter"), Some(0x4300_0800), 0x10, 0),
            (1, Some("control"), Some(0x4300_0f00), 0x100, 1),
        ]
    );
    let first = d.region(0).unwrap();
    assert_eq!(first.offset % PAGE_SIZE, 0);
    assert!(first.offset >= d.len() as u64);
    assert_eq!(
        d.dt_region("/soc/bridge@1000000/timer@800800", 1)
            .unwrap()
            .index,
        1
    );
    assert_eq!(d.device().label(), Some("timer"));
}

const SIZE_CELLS_0: &str = r#"
/dts-v1/;
/ {
    #address-cells = <1>;
    #size-cells = <1>;
    i2c@5000 {
        compatible = "vendor,i2c";
        reg = <0x5000 0x100>;
        #address-cells = <1>;
        #size-cells = <0>;
        sensor@48 {
            compatible = "vendor,sensor";
            reg = <0x48>;
        };
        eeprom@50 {
            compatible = "vendor,eeprom";
            reg = <0x50 0x51>;
        };
    };
    spmi {
        #address-cells = <1>;
        #size-cells = <0>;
        /* With #size-cells = <0> a ranges entry has no length, so it maps nothing. */
        ranges = <0x0 0x6000>;
        pmic@2 {
            compatible = "vendor,pmic";
            reg = <0x2>;
        };
    };
};
"#;

#[test]
fn size_cells_zero() {
    let dtb = compile(SIZE_CELLS_0);
    let dt = DeviceTree::parse(&dtb).unwrap();
    let i2c = dt.node("/i2c@5000").unwrap();
    assert_eq!(i2c.regs[0].mapped(), Some((0x5000, 0x100)));
    let sensor = dt.node("/i2c@5000/sensor@48").unwrap();
    assert_eq!(sensor.regs.len(), 1);
    assert_eq!(
        (sensor.regs[0].bus_address, sensor.regs[0].size),
        (0x48, None)
    );
    assert_eq!(sensor.regs[0].address, None);
    assert!(!sensor.is_device(), "an I2C address is not memory-mapped");
    // Two entries of one cell each.
    let eeprom = dt.node("/i2c@5000/eeprom@50").unwrap();
    let addrs: Vec<u128> = eeprom.regs.iter().map(|r| r.bus_address).collect();
    assert_eq!(addrs, [0x50, 0x51]);
    let pmic = dt.node("/spmi/pmic@2").unwrap();
    assert_eq!((pmic.regs[0].bus_address, pmic.regs[0].address), (2, None));
}

const INTERRUPTS: &str = r#"
/dts-v1/;
/ {
    #address-cells = <1>;
    #size-cells = <1>;
    interrupt-parent = <&gic>;

    gic: interrupt-controller@8000000 {
        compatible = "arm,gic-400";
        reg = <0x8000000 0x1000 0x8010000 0x2000>;
        interrupt-controller;
        #interrupt-cells = <3>;
    };

    gpio: gpio@9000000 {
        compatible = "vendor,gpio";
        reg = <0x9000000 0x1000>;
        interrupts = <0 5 4>;
        interrupt-controller;
        #interrupt-cells = <2>;
    };

    dev@a000000 {
        compatible = "vendor,dev";
        reg = <0xa000000 0x1000>;
        interrupts-extended = <&gic 0 7 1>, <&gpio 3 8>;
        interrupt-names = "tx", "wake";
    };

    /* interrupt-parent on a bus: its children inherit it through the tree. */
    bus {
        compatible = "simple-bus";
        #address-cells = <1>;
        #size-cells = <1>;
        ranges;
        interrupt-parent = <&gpio>;
        button@b000000 {
            compatible = "vendor,button";
            reg = <0xb000000 0x10>;
            interrupts = <12 2>;
        };
    };

    timer {
        compatible = "vendor,timer";
        interrupts = <1 13 0xf04>, <1 14 0xf04>;
    };
};
"#;

#[test]
fn interrupts_extended_and_inherited_parents() {
    let dtb = compile(INTERRUPTS);
    let dt = DeviceTree::parse(&dtb).unwrap();
    let gic = "/interrupt-controller@8000000";
    let summary = |path: &str| -> Vec<(String, Vec<u32>, Trigger, Option<String>)> {
        dt.node(path)
            .unwrap()
            .interrupts
            .iter()
            .map(|i| {
                (
                    i.parent.clone(),
                    i.cells.clone(),
                    i.trigger,
                    i.label.map(String::from),
                )
            })
            .collect()
    };
    // The GPIO controller's own interrupt goes to the root's interrupt-parent, the GIC.
    assert_eq!(
        summary("/gpio@9000000"),
        [(gic.into(), vec![0, 5, 4], Trigger::Level, None)]
    );
    // One specifier per controller, each with that controller's #interrupt-cells.
    assert_eq!(
        summary("/dev@a000000"),
        [
            (gic.into(), vec![0, 7, 1], Trigger::Edge, Some("tx".into())),
            (
                "/gpio@9000000".into(),
                vec![3, 8],
                Trigger::Level,
                Some("wake".into())
            ),
        ]
    );
    // Inherited from the bus: the GPIO controller, 2 cells, edge-falling.
    assert_eq!(
        summary("/bus/button@b000000"),
        [("/gpio@9000000".into(), vec![12, 2], Trigger::Edge, None)]
    );
    // No reg at all, two interrupts: still a device (interrupts only).
    let timer = dt.node("/timer").unwrap();
    assert!(timer.is_device());
    assert_eq!(timer.interrupts.len(), 2);

    // The description of dev: interrupt i is DT_INDEX interrupts[i], with DT_INTERRUPT.
    let bytes = dt.node("/dev@a000000").unwrap().build().unwrap();
    let d = devfd_format::parse(&bytes).unwrap();
    let irqs: Vec<_> = d
        .interrupts()
        .map(|i| {
            let x = i.dt_interrupt().unwrap();
            (
                i.index,
                i.label(),
                x.controller.to_string(),
                x.cells.collect::<Vec<_>>(),
                i.flags,
                i.dt().unwrap().property,
            )
        })
        .collect();
    assert_eq!(
        irqs,
        [
            (
                0,
                Some("tx"),
                gic.to_string(),
                vec![0, 7, 1],
                IRQ_MASKABLE,
                DT_PROP_INTERRUPTS
            ),
            (
                1,
                Some("wake"),
                "/gpio@9000000".to_string(),
                vec![3, 8],
                IRQ_LEVEL | IRQ_MASKABLE | IRQ_AUTOMASKED,
                DT_PROP_INTERRUPTS
            ),
        ]
    );
    for i in d.interrupts() {
        assert_eq!((i.kind, i.count), (IRQ_KIND_WIRED, 1));
        assert!(i.control_offset >= d.region(0).unwrap().end());
    }
    // The timer's description has interrupts and no regions.
    let d2 = dt.node("/timer").unwrap().build().unwrap();
    let d2 = devfd_format::parse(&d2).unwrap();
    assert_eq!((d2.region_count(), d2.interrupt_count()), (0, 2));
}

const STATUS: &str = r#"
/dts-v1/;
/ {
    #address-cells = <1>;
    #size-cells = <1>;
    on@1000 { compatible = "vendor,a"; reg = <0x1000 0x100>; };
    okay@2000 { compatible = "vendor,a"; reg = <0x2000 0x100>; status = "okay"; };
    ok@3000 { compatible = "vendor,a"; reg = <0x3000 0x100>; status = "ok"; };
    off@4000 { compatible = "vendor,a"; reg = <0x4000 0x100>; status = "disabled"; };
    broken@5000 { compatible = "vendor,a"; reg = <0x5000 0x100>; status = "fail-sss"; };
    reserved@6000 { compatible = "vendor,a"; reg = <0x6000 0x100>; status = "reserved"; };
    memory@80000000 { device_type = "memory"; reg = <0x80000000 0x1000000>; };
};
"#;

#[test]
fn disabled_nodes_are_listed_but_not_devices() {
    let dtb = compile(STATUS);
    let dt = DeviceTree::parse(&dtb).unwrap();
    let listed: Vec<(&str, &str, bool, bool)> = dt
        .nodes()
        .iter()
        .map(|n| (n.path.as_str(), n.status, n.enabled, n.is_device()))
        .collect();
    assert_eq!(
        listed,
        [
            ("/on@1000", "okay", true, true),
            ("/okay@2000", "okay", true, true),
            ("/ok@3000", "ok", true, true),
            ("/off@4000", "disabled", false, false),
            ("/broken@5000", "fail-sss", false, false),
            ("/reserved@6000", "reserved", false, false),
            // No compatible: not a device (a platform description needs one).
            ("/memory@80000000", "okay", true, false),
        ]
    );
    assert_eq!(dt.describe_all().unwrap().len(), 3);
    // A disabled node still has a description one can ask for.
    assert!(dt.node("/off@4000").unwrap().build().is_ok());
}

#[test]
fn dtc_agrees_with_every_hand_written_tree() {
    // The same byte-for-byte tree check as for QEMU's trees.
    for dts in [RANGES, SIZE_CELLS_0, INTERRUPTS, STATUS] {
        let dtb = compile(dts);
        let view = common::dtc_view(&dtb);
        let tree = devfd_dtb::Tree::parse(&dtb).unwrap();
        let paths: Vec<String> = tree.nodes().map(|n| tree.path(n)).collect();
        assert_eq!(paths, view.order);
        for id in tree.nodes() {
            let ours: Vec<(String, Vec<u8>)> = tree
                .properties(id)
                .iter()
                .map(|p| (p.name.to_string(), p.value.to_vec()))
                .collect();
            assert_eq!(ours, view.nodes[&tree.path(id)].props);
        }
    }
}
