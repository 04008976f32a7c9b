//! `serve --vfio-user` (devices to vfio-user clients) and `serve --vfio-user-connect` (a
//! vfio-user server's device as a device file).

use std::io::Write;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use devfd_device::Device;
use devfd_vfio_user::Server;

use crate::args::ServeArgs;

/// Binds a listening socket at `path`, replacing a stale socket file (one nobody listens on)
/// but never a live one or anything that is not a socket.
fn bind(path: &Path) -> Result<UnixListener> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            bail!("{} exists and is not a socket", path.display());
        }
        if UnixStream::connect(path).is_ok() {
            bail!(
                "{} is a live socket: another server listens on it",
                path.display()
            );
        }
        std::fs::remove_file(path)
            .with_context(|| format!("removing the stale socket {}", path.display()))?;
    }
    UnixListener::bind(path).with_context(|| format!("binding {}", path.display()))
}

/// `devfd serve --vfio-user PATH`.
pub fn serve(args: &ServeArgs, path: &Path, demo: bool) -> Result<ExitCode> {
    if !args.pci.is_empty() || args.dtb.is_some() || !args.vfio.is_empty() {
        bail!(
            "--vfio-user serves emulated devices (--device); --pci, --dtb and --vfio are for device files"
        );
    }
    let specs = if demo {
        vec!["edu".to_owned()]
    } else {
        args.devices.clone()
    };
    let devices: Vec<Arc<dyn Device>> = specs
        .iter()
        .map(|spec| devfd_emu::from_spec_str(spec).with_context(|| format!("--device {spec}")))
        .collect::<Result<_>>()?;
    let names = crate::device_cmds::device_names(&devices);
    let servers: Vec<(String, Server)> = devices
        .into_iter()
        .zip(&names)
        .map(|(d, name)| {
            Server::new(d)
                .map(|s| (name.clone(), s))
                .with_context(|| format!("--device {name} cannot be served over vfio-user"))
        })
        .collect::<Result<_>>()?;
    let sockets: Vec<PathBuf> = if servers.len() == 1 {
        vec![path.to_owned()]
    } else {
        std::fs::create_dir_all(path)
            .with_context(|| format!("creating the socket directory {}", path.display()))?;
        names
            .iter()
            .map(|n| path.join(format!("{n}.sock")))
            .collect()
    };
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])
    .context("installing signal handlers")?;
    let mut banner = format!(
        "devfd: serving {} device(s) over vfio-user\n",
        servers.len()
    );
    for ((name, server), socket) in servers.into_iter().zip(&sockets) {
        let listener = bind(socket)?;
        banner.push_str(&format!(
            "  {}  {name} ({})\n",
            socket.display(),
            server.summary()
        ));
        std::thread::Builder::new()
            .name(format!("vfio-user-{name}"))
            .spawn(move || {
                if let Err(e) = server.serve(&listener) {
                    eprintln!("devfd: vfio-user {name}: {e}");
                }
            })
            .context("starting a vfio-user server thread")?;
    }
    banner.push_str("devfd: Ctrl-C (SIGINT) or SIGTERM removes the sockets and exits\n");
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(banner.as_bytes()).and_then(|()| out.flush());
    drop(out);
    let signal = signals.forever().next();
    for socket in &sockets {
        let _ = std::fs::remove_file(socket);
    }
    eprintln!(
        "devfd: signal {}, removed {} socket(s)",
        signal.unwrap_or_default(),
        sockets.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// `devfd info --vfio-user SOCKET`: what the server reports, and the description built.
pub fn info(socket: &Path, json_out: bool) -> Result<ExitCode> {
    let client = devfd_vfio_user::Client::connect(socket, None)
        .with_context(|| format!("--vfio-user {}", socket.display()))?;
    let parsed = devfd_format::parse(client.description()).context("the built description")?;
    let text = if json_out {
        let v = serde_json::json!({
            "server": crate::vfio_cmds::kernel_json(client.server_info()),
            "description": devfd_tools::inspect::render_json(&parsed),
        });
        format!("{}\n", serde_json::to_string_pretty(&v)?)
    } else {
        format!(
            "{}\n{}",
            crate::vfio_cmds::kernel_text(client.server_info(), "the server"),
            devfd_tools::inspect::render_text(&format!("vfio-user {}", socket.display()), &parsed)
        )
    };
    crate::commands::stdout(text.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}

/// The devices of the vfio-user servers at `sockets` (`serve --vfio-user-connect`), each with
/// a DMA window of `dma` bytes if given.
pub fn connect_devices(sockets: &[PathBuf], dma: Option<u64>) -> Result<Vec<Arc<dyn Device>>> {
    sockets
        .iter()
        .map(|socket| {
            devfd_vfio_user::Client::connect(socket, dma)
                .map(|d| Arc::new(d) as Arc<dyn Device>)
                .with_context(|| format!("--vfio-user-connect {}", socket.display()))
        })
        .collect()
}
