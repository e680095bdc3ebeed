//! Where markbase keeps its own data: `$XDG_DATA_HOME/markbase`, or
//! `~/.local/share/markbase` when XDG_DATA_HOME is unset or empty.

use std::path::PathBuf;

/// markbase's data directory; `None` when neither XDG_DATA_HOME nor HOME is set.
pub fn markbase_data_dir() -> Option<PathBuf> {
    let data = match std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        Some(data) => PathBuf::from(data),
        None => PathBuf::from(std::env::var_os("HOME")?).join(".local/share"),
    };
    Some(data.join("markbase"))
}
