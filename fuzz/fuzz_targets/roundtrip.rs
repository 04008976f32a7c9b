//! parse -> model -> build -> parse: whatever is accepted rebuilds into an equal model, and
//! the rebuilt bytes are canonical.
#![no_main]

use devfd_format::model::DeviceDesc;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(d) = devfd_format::parse(data) else { return };
    let model = DeviceDesc::from_description(&d);
    let bytes = model.build().expect("an accepted description rebuilds");
    let again = devfd_format::parse(&bytes).expect("a rebuilt description parses");
    assert_eq!(DeviceDesc::from_description(&again), model);
    assert_eq!(model.build().unwrap(), bytes);
});
