//! Finding fuse-t's NFS helper, `go-nfsv4`.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::error::HelperError;

/// The environment variable fuse-t's own libfuse reads for the helper's path.
pub const HELPER_ENV: &str = "FUSE_NFSSRV_PATH";

/// Where fuse-t installs the helper system-wide, tried after the per-user install
/// ([`user_location`]): `/usr/local/bin` is where fuse-t's own libfuse looks; the
/// others are where its package and Homebrew have put it.
pub const INSTALL_LOCATIONS: &[&str] = &[
    "/usr/local/bin/go-nfsv4",
    "/Library/Application Support/fuse-t/bin/go-nfsv4",
    "/opt/homebrew/bin/go-nfsv4",
];

/// The per-user install fuse-t's libfuse looks at first: `$HOME/.fuse-t/usr/local/bin/go-nfsv4`.
pub fn user_location() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map(|home| Path::new(&home).join(".fuse-t/usr/local/bin/go-nfsv4"))
}

/// The helper to run: `explicit` (from [`HELPER_ENV`] or the caller) when given, else
/// the first that exists of the per-user install ([`user_location`]) and
/// [`INSTALL_LOCATIONS`], in fuse-t's libfuse's order. It must be an executable file.
pub fn locate(explicit: Option<&Path>) -> Result<PathBuf, HelperError> {
    let mut looked = Vec::new();
    let candidates: Vec<PathBuf> = match explicit {
        Some(path) => {
            let from_env = std::env::var_os(HELPER_ENV).is_some_and(|var| Path::new(&var) == path);
            looked.push(if from_env {
                format!("{} (from {HELPER_ENV})", path.display())
            } else {
                path.display().to_string()
            });
            vec![path.to_path_buf()]
        }
        None => {
            looked.push(format!("{HELPER_ENV} (not set)"));
            let candidates: Vec<PathBuf> = user_location()
                .into_iter()
                .chain(INSTALL_LOCATIONS.iter().map(PathBuf::from))
                .collect();
            looked.extend(candidates.iter().map(|path| path.display().to_string()));
            candidates
        }
    };
    let found = candidates
        .into_iter()
        .find_map(|path| std::fs::metadata(&path).ok().map(|meta| (path, meta)));
    let Some((path, meta)) = found else {
        return Err(HelperError::Missing { looked });
    };
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(HelperError::NotExecutable(path));
    }
    Ok(path)
}
