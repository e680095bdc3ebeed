//! The store: room for the bytes of files written through the mount, and the right
//! to write there.

use markbase_vfs::Vfs;
use rustix::fs::{Access, statvfs};

use super::check::{Check, Status};
use super::users::User;

/// Below this share of the filesystem free (in percent), the store is short of room.
const LOW_PERCENT: u64 = 5;

/// Below this many bytes free, the store is short of room: a few renders' worth.
const LOW_BYTES: u64 = 4 << 30;

/// The store's free space, and whether this user may write there.
pub fn check(vfs: Option<&Vfs>, user: &User) -> Check {
    let Some(vfs) = vfs else {
        return Check::new(
            "store",
            Status::Info(None),
            "not checked: the catalog does not open",
        );
    };
    let dir = vfs.store_dir();
    // The store is made with its first file: until then its parent says.
    let Some(existing) = dir.ancestors().find(|path| path.exists()) else {
        return Check::new(
            "store",
            Status::Warn(format!("create it: `mkdir -p {}`", super::quoted(dir))),
            format!("{}: neither it nor a parent exists", dir.display()),
        );
    };
    let made = if existing == dir {
        String::new()
    } else {
        format!(
            " (not made yet: made with the first file written through the mount, in {})",
            existing.display()
        )
    };
    let space = match statvfs(existing) {
        Ok(space) => space,
        Err(err) => {
            return Check::new(
                "store",
                Status::Warn(format!("check the filesystem of {}", existing.display())),
                format!(
                    "{}{made}: its free space cannot be read ({err})",
                    dir.display()
                ),
            );
        }
    };
    let free = space.f_bavail.saturating_mul(space.f_frsize);
    let total = space.f_blocks.saturating_mul(space.f_frsize);
    let detail = format!(
        "{}{made}: {} free of {}",
        dir.display(),
        size(free),
        size(total)
    );
    if rustix::fs::access(existing, Access::WRITE_OK).is_err() {
        return Check::new(
            "store",
            Status::Warn(format!(
                "let {} write there (`sudo chown {} {}`), or run markbase as its owner",
                user.name,
                user.name,
                super::quoted(existing)
            )),
            format!(
                "{detail}; not writable by user {}, so files written through the mount fail",
                user.name
            ),
        );
    }
    if free < LOW_BYTES || free.saturating_mul(100) < total.saturating_mul(LOW_PERCENT) {
        return Check::new(
            "store",
            Status::Warn(format!(
                "free space on the filesystem of {} before writing renders through the mount",
                existing.display()
            )),
            format!("{detail}: nearly full"),
        );
    }
    Check::new("store", Status::Ok, detail)
}

/// `812 GiB`, `1.8 TiB`: a byte count for people.
fn size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 || value >= 10.0 {
        format!("{value:.0} {}", UNITS[unit])
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(812 << 30), "812 GiB");
        assert_eq!(size((18 << 40) / 10), "1.8 TiB");
        assert_eq!(size(35 << 30), "35 GiB");
        assert_eq!(size(5 << 29), "2.5 GiB");
    }
}
