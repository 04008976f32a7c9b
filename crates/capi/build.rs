//! Gives libdevfd.so the soname C programs link against (`libdevfd.so.0`).
fn main() {
    println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libdevfd.so.0");
}
