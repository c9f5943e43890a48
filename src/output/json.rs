//! The JSON report: one document, pretty-printed, nothing else on stdout.

use serde::Serialize;
use std::io::{self, Write};

/// Writes `report` as one JSON document followed by a newline.
pub fn write<T: Serialize>(report: &T, out: &mut dyn Write) -> io::Result<()> {
    // serde_json gives an I/O failure back as it was (a closed pipe stays a closed pipe).
    serde_json::to_writer_pretty(&mut *out, report).map_err(io::Error::from)?;
    out.write_all(b"\n")
}
