//! DTB → descriptions on arbitrary bytes: never a panic; every accessor of an accepted tree
//! works; every description built from an accepted tree is valid and says what its node says.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(tree) = devfd_dtb::Tree::parse(data) else {
        return;
    };
    for id in tree.nodes() {
        // Paths are unique (no two siblings share a name), so each finds its node.
        let path = tree.path(id);
        assert_eq!(tree.find(&path), Some(id), "{path}");
        assert!(tree.children(id).all(|c| tree.parent(c) == Some(id)));
        for p in tree.properties(id) {
            let _ = (p.cells().map(|c| c.count()), p.strings(), p.u32(), p.string());
        }
    }
    let Ok(dt) = devfd_dtb::DeviceTree::from_tree(tree) else {
        return;
    };
    for node in dt.nodes() {
        for r in &node.regs {
            let _ = r.mapped();
        }
        let Ok(bytes) = node.build() else {
            continue;
        };
        let d = devfd_format::parse(&bytes).expect("a built description is valid");
        let mapped: Vec<(u64, u64)> = node.regs.iter().filter_map(|r| r.mapped()).collect();
        assert_eq!(d.region_count() as usize, mapped.len());
        for (r, (address, size)) in d.regions().zip(mapped) {
            assert_eq!((r.dt_address(), r.size), (Some(address), size));
            assert_eq!(r.dt().map(|x| x.path), Some(node.path.as_str()));
        }
        assert_eq!(d.interrupt_count() as usize, node.interrupts.len());
        for (i, irq) in d.interrupts().zip(&node.interrupts) {
            let x = i.dt_interrupt().expect("DT_INTERRUPT");
            assert_eq!(x.controller, irq.parent);
            assert!(x.cells.eq(irq.cells.iter().copied()));
        }
        let model = devfd_format::model::DeviceDesc::from_description(&d);
        assert_eq!(model.build().expect("rebuilds"), bytes);
    }
});
