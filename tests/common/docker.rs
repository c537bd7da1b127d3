//! Docker plumbing of the test harness: running the CLI, the availability check, parallel workers,
//! network allocation and container removal.

use super::cleanup::owner_identity;
use super::{
    err, workers, BedError, Result, HOW_TO_GET_DOCKER, IMAGE, LABEL, NEXT_NET, OWNER_LABEL,
    SUBNET_BASE,
};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

pub fn docker(args: &[&str]) -> Result<Output> {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                BedError(format!("`docker` not found: {HOW_TO_GET_DOCKER}"))
            } else {
                BedError(format!("cannot run `docker {}`: {e}", args.join(" ")))
            }
        })
}

/// Runs docker and requires success; returns trimmed stdout.
pub fn docker_ok(args: &[&str]) -> Result<String> {
    let out = docker(args)?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        err(format!(
            "`docker {}` failed ({}): {}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Checks once per process that Docker and the image are usable; the error says how to fix it.
pub fn require_docker() -> Result<()> {
    static CHECK: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    CHECK
        .get_or_init(|| {
            let out = docker(&["version", "--format", "{{.Server.Version}}"]).map_err(|e| e.0)?;
            if !out.status.success() {
                return Err(format!(
                    "the Docker daemon is not reachable ({}): {HOW_TO_GET_DOCKER}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            let img =
                docker(&["image", "inspect", "--format", "{{.Id}}", IMAGE]).map_err(|e| e.0)?;
            if !img.status.success() {
                return Err(format!(
                    "Docker image {IMAGE} is missing: build it with `bash tests/hosts/build-image` \
                     (or `bash tests/hosts/setup`, which also installs what it needs)"
                ));
            }
            Ok(())
        })
        .clone()
        .map_err(BedError)
}

/// `docker rm -f` in a few parallel batches; errors are ignored (already gone is fine).
pub fn remove_containers(names: &[String]) {
    if names.is_empty() {
        return;
    }
    let chunk = names.len().div_ceil(workers()).max(1);
    std::thread::scope(|s| {
        for part in names.chunks(chunk) {
            s.spawn(move || {
                let mut args = vec!["rm", "-f", "-v"];
                args.extend(part.iter().map(String::as_str));
                let _ = docker(&args);
            });
        }
    });
}

/// Runs `f` over `items` with a few worker threads; the first error wins (all items are still tried).
pub fn run_parallel<T: Sync>(items: &[T], f: impl Fn(&T) -> Result<()> + Sync) -> Result<()> {
    let next = AtomicUsize::new(0);
    let first_err: Mutex<Option<BedError>> = Mutex::new(None);
    std::thread::scope(|s| {
        for _ in 0..workers().min(items.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                let Some(item) = items.get(i) else { break };
                if let Err(e) = f(item) {
                    first_err
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .get_or_insert(e);
                }
            });
        }
    });
    match first_err.into_inner().unwrap_or_else(|p| p.into_inner()) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Creates a labelled network on a free 10.231.N.0/24; Docker rejects overlapping subnets, which makes
/// the allocation safe across threads and processes.
pub fn create_network() -> Result<u8> {
    let start = (std::process::id() as usize)
        .wrapping_mul(31)
        .wrapping_add(NEXT_NET.fetch_add(1, Ordering::SeqCst) * 7);
    let mut last = String::new();
    let mut other_errors = 0;
    for k in 0..254usize {
        let n = ((start + k) % 254 + 1) as u8;
        let subnet = format!("{}.{}.{n}.0/24", SUBNET_BASE[0], SUBNET_BASE[1]);
        let gateway = format!("{}.{}.{n}.1", SUBNET_BASE[0], SUBNET_BASE[1]);
        let out = docker(&[
            "network",
            "create",
            "--driver",
            "bridge",
            "--subnet",
            &subnet,
            "--gateway",
            &gateway,
            "-o",
            &format!("com.docker.network.bridge.name=kp-{n}"),
            "--label",
            &format!("{LABEL}=1"),
            "--label",
            &format!("{OWNER_LABEL}={}", owner_identity()),
            &format!("kptest-{n}"),
        ])?;
        if out.status.success() {
            return Ok(n);
        }
        last = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let taken =
            last.contains("overlaps") || last.contains("already exists") || last.contains("in use");
        // Anything else (e.g. a stray kp-N interface) may be local to this N: try a few more, then stop.
        if !taken {
            other_errors += 1;
            if other_errors >= 3 {
                return err(format!(
                    "cannot create Docker network kptest-{n} ({subnet}): {last}"
                ));
            }
        }
    }
    err(format!(
        "no free subnet in {}.{}.0.0/16 for a test network: {last}",
        SUBNET_BASE[0], SUBNET_BASE[1]
    ))
}
