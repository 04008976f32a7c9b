//! Device (a) of "one driver, three devices": the driver binary, as a separate process,
//! against the emulated edu with a DMA window served on a real FUSE mount. (b) VFIO and (c)
//! sysfs run the same binary inside the test VM (tests/vm).

use std::process::Command;
use std::sync::Arc;

use devfd_device::Device;
use devfd_emu::{DmaMemory, Edu, EduOptions};

fn serve(name: &str, dma: bool) -> (std::path::PathBuf, devfd_fuse::Server) {
    let dir = std::env::temp_dir().join(format!("devfd-edu-driver-{}-{name}", std::process::id()));
    let options = EduOptions {
        dma: dma
            .then(|| Arc::new(DmaMemory::new(1 << 20, devfd_emu::DEFAULT_BUS_ADDRESS).unwrap())),
        ..Default::default()
    };
    let edu: Arc<dyn Device> = Arc::new(Edu::new(options).unwrap());
    let server = devfd_fuse::serve(
        vec![("edu0".into(), edu)],
        devfd_fuse::ServeOptions::new(&dir),
    )
    .expect("mount (needs root and /dev/fuse)");
    (dir, server)
}

/// What the driver prints when every check passes on an edu with a DMA window.
const EVERY_CHECK: [&str; 8] = [
    "PASS id",
    "PASS liveness",
    "PASS factorial (polled)",
    "PASS hostile accesses get SPEC errnos",
    "PASS factorial with INTx",
    "PASS DMA round trip with INTx",
    "PASS factorial with MSI",
    "PASS DMA round trip with MSI",
];

fn run_driver(path: &std::path::Path, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_edu-driver"))
        .arg(path)
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[test]
fn the_driver_passes_every_check_on_the_emulated_edu_with_dma() {
    let (dir, _server) = serve("dma", true);
    let (ok, text) = run_driver(&dir.join("edu0"), &[]);
    assert!(ok, "{text}");
    for check in EVERY_CHECK {
        assert!(text.contains(check), "{check} missing:\n{text}");
    }
}

#[test]
fn without_a_window_the_dma_checks_say_why_they_skip() {
    let (dir, _server) = serve("nodma", false);
    let (ok, text) = run_driver(&dir.join("edu0"), &[]);
    assert!(ok, "{text}");
    assert!(
        text.contains("SKIP DMA round trip with INTx: the device file has no DMA window"),
        "{text}"
    );
    let (ok, text) = run_driver(&dir.join("edu0"), &["--no-irq"]);
    assert!(ok, "{text}");
    assert!(text.contains("SKIP factorial with MSI: --no-irq"), "{text}");
}

/// The same driver through vfio-user: the emulated edu served by devfd's vfio-user server,
/// the client source connected to it over a real Unix socket, and its device file on FUSE. The
/// DMA window is the client's memfd, given to the server with DMA_MAP: edu's engine writes it
/// through the server's mapping.
#[test]
fn the_driver_passes_every_check_through_vfio_user() {
    let dir = std::env::temp_dir().join(format!("devfd-edu-driver-{}-vu", std::process::id()));
    let socket = std::env::temp_dir().join(format!("devfd-edu-driver-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&socket);
    let listener = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let edu: Arc<dyn Device> = Arc::new(Edu::new(EduOptions::default()).unwrap());
    let server = devfd_vfio_user::Server::new(edu).unwrap();
    std::thread::spawn(move || server.serve(&listener));
    let client: Arc<dyn Device> =
        Arc::new(devfd_vfio_user::Client::connect(&socket, Some(1 << 20)).unwrap());
    let _mount = devfd_fuse::serve(
        vec![("edu0".into(), client)],
        devfd_fuse::ServeOptions::new(&dir),
    )
    .expect("mount (needs root and /dev/fuse)");
    let (ok, text) = run_driver(&dir.join("edu0"), &[]);
    let _ = std::fs::remove_file(&socket);
    assert!(ok, "{text}");
    for check in EVERY_CHECK {
        assert!(text.contains(check), "{check} missing:\n{text}");
    }
}
