//! `custom-device MOUNT`: serves one [`custom_device::Watchdog`] as `MOUNT/watchdog0` until
//! Ctrl-C (SIGINT) or SIGTERM, then unmounts. Needs root (or a user allowed to mount FUSE).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use custom_device::Watchdog;
use devfd_device::Device;
use devfd_fuse::ServeOptions;
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(mount), None) = (args.next(), args.next()) else {
        eprintln!("usage: custom-device MOUNT_DIR");
        return ExitCode::from(2);
    };
    match serve(PathBuf::from(mount)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("custom-device: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(mount: PathBuf) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&mount)?;
    // Before any thread starts, so the signals come here rather than killing the process.
    let mut signals = Signals::new([SIGINT, SIGTERM])?;

    let watchdog: Arc<dyn Device> = Arc::new(Watchdog::new()?);
    // Defaults: owner-only files, a 1 s bound on each call into the device, 4 threads.
    let options = ServeOptions::new(&mount);
    let server = devfd_fuse::serve(vec![("watchdog0".into(), watchdog)], options)?;

    let file = mount.join("watchdog0");
    println!("custom-device: serving {}", file.display());
    println!("  devfd info {}", file.display());
    println!("  devfd read {} regs 0x0", file.display());
    println!("custom-device: Ctrl-C (SIGINT) or SIGTERM unmounts and exits");

    let signal = signals.forever().next().unwrap_or_default();
    server.unmount()?;
    eprintln!(
        "custom-device: signal {signal}, unmounted {}",
        mount.display()
    );
    Ok(())
}
