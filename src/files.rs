//! Reading the files the flags name (`--config`, `--ca`, `--auth-password-file`, `--body-file`):
//! bounded in size and in time.
//!
//! A file is opened without blocking (`O_NONBLOCK`), so a FIFO nobody writes cannot hang the
//! `open()`; a directory is refused; at most `limit` bytes are read (one more tells "too large"),
//! so `/dev/zero` is "larger than the limit", not a growing buffer. A FIFO, pipe or device that has
//! nothing to read yet is waited for at most [`WAIT`] in all, and so is a FIFO that has no writer
//! yet (until a writer sends something, then its end of file ends the read). Regular files never
//! wait. What went wrong is returned in words, for the caller's error.

use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

/// The longest a FIFO, pipe or device may keep the reader waiting, in all.
pub const WAIT: Duration = Duration::from_secs(5);

/// How long to sleep between two reads of a FIFO or device that had nothing yet.
const POLL: Duration = Duration::from_millis(5);

/// Opens `path` for reading without blocking; a directory is refused.
pub fn open(path: &Path) -> Result<File, String> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| crate::error::words(&e))?;
    let meta = file.metadata().map_err(|e| crate::error::words(&e))?;
    if meta.is_dir() {
        return Err("it is a directory".into());
    }
    Ok(file)
}

/// The whole of `path`, at most `limit` bytes: more is an error naming the limit.
pub fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>, String> {
    let bytes = read_prefix(path, limit.saturating_add(1), None)?;
    if bytes.len() as u64 > limit {
        return Err(format!(
            "it is larger than the limit of {}",
            show_size(limit)
        ));
    }
    Ok(bytes)
}

/// The first `limit` bytes of `path` (fewer at its end), or up to and including the first `stop`
/// byte when one is given.
pub fn read_prefix(path: &Path, limit: u64, stop: Option<u8>) -> Result<Vec<u8>, String> {
    let mut file = open(path)?;
    let fifo = is_fifo(&file);
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    while (out.len() as u64) < limit {
        let want = (limit - out.len() as u64).min(buf.len() as u64) as usize;
        match file.read(&mut buf[..want]) {
            // A FIFO without a writer reads as the end of file: wait for one, within the bound.
            Ok(0) if fifo && out.is_empty() => {
                if started.elapsed() >= WAIT {
                    return Err(nothing_within());
                }
                std::thread::sleep(POLL);
            }
            Ok(0) => break,
            Ok(n) => {
                let got = &buf[..n];
                if let Some(at) = stop.and_then(|s| got.iter().position(|&b| b == s)) {
                    out.extend_from_slice(&got[..=at]);
                    break;
                }
                out.extend_from_slice(got);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if started.elapsed() >= WAIT {
                    return Err(nothing_within());
                }
                std::thread::sleep(POLL);
            }
            Err(e) => return Err(crate::error::words(&e)),
        }
    }
    Ok(out)
}

/// The error when a FIFO or device kept the reader waiting for [`WAIT`].
fn nothing_within() -> String {
    format!(
        "nothing (more) arrived within {} s: it is a FIFO or device nobody writes; give a regular file",
        WAIT.as_secs()
    )
}

/// `true` for a FIFO or pipe.
fn is_fifo(file: &File) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        file.metadata().is_ok_and(|m| m.file_type().is_fifo())
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        false
    }
}

/// A byte count in the unit it was most likely given in (`1 MiB`, `512 KiB`, `100 bytes`).
pub fn show_size(bytes: u64) -> String {
    const MIB: u64 = 1024 * 1024;
    if bytes >= MIB && bytes.is_multiple_of(MIB) {
        format!("{} MiB", bytes / MIB)
    } else if bytes >= 1024 && bytes.is_multiple_of(1024) {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("smtpcheck-files-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn reads_within_the_limit_and_refuses_more() {
        let p = temp("ten", b"0123456789");
        assert_eq!(read_bounded(&p, 10).unwrap(), b"0123456789");
        let e = read_bounded(&p, 9).unwrap_err();
        assert_eq!(e, "it is larger than the limit of 9 bytes");
        assert_eq!(read_prefix(&p, 4, None).unwrap(), b"0123");
        assert_eq!(read_prefix(&p, 100, Some(b'3')).unwrap(), b"0123");
        let _ = std::fs::remove_file(p);
    }

    #[test]
    fn directories_and_endless_devices_are_refused() {
        assert_eq!(
            read_bounded(&std::env::temp_dir(), 10).unwrap_err(),
            "it is a directory"
        );
        #[cfg(unix)]
        assert_eq!(
            read_bounded(Path::new("/dev/zero"), 1024 * 1024).unwrap_err(),
            "it is larger than the limit of 1 MiB"
        );
    }

    #[test]
    fn sizes_are_shown_in_their_unit() {
        assert_eq!(show_size(4 * 1024 * 1024), "4 MiB");
        assert_eq!(show_size(512 * 1024), "512 KiB");
        assert_eq!(show_size(1000), "1000 bytes");
    }
}
