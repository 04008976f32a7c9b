//! parse and lint on arbitrary bytes: never a panic; lint agrees with parse; every accessor of
//! an accepted description works.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = devfd_format::parse(data);
    let mut first = None;
    let n = devfd_format::lint(data, &mut |e| {
        first.get_or_insert(e);
    });
    match &parsed {
        Ok(d) => {
            assert_eq!(n, 0, "lint found problems in an accepted description");
            for r in d.regions() {
                let _ = (r.location(), r.dt(), r.label(), r.sparse_areas().map(|a| a.count()));
                let _ = r.dt_address();
                assert!(d.region(r.index).is_some());
            }
            for i in d.interrupts() {
                let _ = (i.dt(), i.label(), i.vector_control_offset(0));
                let _ = i.dt_interrupt().map(|x| (x.controller.len(), x.cells.count()));
                assert!(d.interrupt(i.index).is_some());
            }
            assert_eq!(d.flat().count(), d.flat_len());
            let _ = d.device().compatible().count();
        }
        Err(_) => assert!(n > 0, "lint found nothing in a rejected description"),
    }
});
