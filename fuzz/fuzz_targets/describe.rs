//! The TOML description language on arbitrary text: an error or a valid description.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(desc) = devfd_tools::describe::describe(text) {
        let bytes = desc.build().expect("describe only returns buildable descriptions");
        devfd_format::parse(&bytes).expect("and they parse");
    }
});
