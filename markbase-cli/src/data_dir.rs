//! Where markbase keeps its own files: the demo library, mount logs and the record of
//! live mounts.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// markbase's data directory: `$XDG_DATA_HOME/markbase`, or `~/.local/share/markbase`.
pub fn data_dir() -> Result<PathBuf> {
    let data = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(data) => PathBuf::from(data),
        None => {
            let home = std::env::var_os("HOME").context("neither XDG_DATA_HOME nor HOME is set")?;
            PathBuf::from(home).join(".local/share")
        }
    };
    Ok(data.join("markbase"))
}
