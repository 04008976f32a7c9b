//! The views behind `devfd inspect`: JSON, tree, hex and flat table of any accepted input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(d) = devfd_format::parse(data) else { return };
    let json = devfd_tools::inspect::render_json(&d);
    let text = serde_json::to_string(&json).expect("JSON serialises");
    let back: serde_json::Value = serde_json::from_str(&text).expect("JSON parses back");
    assert_eq!(back["regions"].as_array().map(Vec::len), Some(d.region_count() as usize));
    let _ = devfd_tools::inspect::render_text("fuzz", &d);
    let _ = devfd_tools::inspect::render_hex(&d);
    let _ = devfd_tools::inspect::render_flat(&d);
    let _ = devfd_tools::inspect::render_flat_json(&d);
    assert_eq!(devfd_tools::inspect::flat_bytes(&d).len(), d.flat_len() * 64);
});
