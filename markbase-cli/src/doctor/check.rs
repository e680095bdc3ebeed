//! One line of the checklist: what was checked, what was found, and the fix.

use serde::Serialize;

/// How a check came out. A failure cannot be made without its fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// In place.
    Ok,
    /// Worth knowing, never a failure; perhaps with how to do better.
    Info(Option<String>),
    /// Works, but may cause trouble; the fix.
    Warn(String),
    /// Stops the default way to mount; the fix.
    Fail(String),
}

impl Status {
    /// A requirement that is not met: a failure when the way it belongs to is the one
    /// that will be used (`needed`), otherwise only worth knowing.
    pub fn unmet(needed: bool, fix: String) -> Self {
        if needed {
            Self::Fail(fix)
        } else {
            Self::Info(Some(fix))
        }
    }
}

/// One check's outcome.
#[derive(Clone, Debug)]
pub struct Check {
    /// What was checked (`catalog`, `fuse`, `mount point`...).
    pub name: String,
    /// How it came out.
    pub status: Status,
    /// What was found.
    pub detail: String,
}

impl Check {
    /// A check named `name` that found `detail`.
    pub fn new(name: impl Into<String>, status: Status, detail: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            status,
            detail: detail.into(),
        }
    }

    /// Whether it failed.
    pub fn is_fail(&self) -> bool {
        matches!(self.status, Status::Fail(_))
    }

    /// Whether what it checked is in place: ok, or information with nothing to fix.
    pub fn is_met(&self) -> bool {
        matches!(self.status, Status::Ok | Status::Info(None))
    }

    /// Its status as one lowercase word: `ok`, `info`, `warn` or `fail`.
    pub fn status_word(&self) -> &'static str {
        match self.status {
            Status::Ok => "ok",
            Status::Info(_) => "info",
            Status::Warn(_) => "warn",
            Status::Fail(_) => "fail",
        }
    }

    /// The fix, if it has one.
    pub fn fix(&self) -> Option<&str> {
        match &self.status {
            Status::Ok | Status::Info(None) => None,
            Status::Info(Some(fix)) | Status::Warn(fix) | Status::Fail(fix) => Some(fix),
        }
    }

    /// Its line of the checklist: `FAIL  name: detail — fix: fix`.
    pub fn line(&self) -> String {
        let label = match self.status {
            Status::Fail(_) => "FAIL",
            _ => self.status_word(),
        };
        let mut line = format!("{label:<6}{}: {}", self.name, self.detail);
        if let Some(fix) = self.fix() {
            line.push_str(" — fix: ");
            line.push_str(fix);
        }
        line
    }

    /// Its entry in `--json`'s `checks`.
    pub fn json(&self) -> JsonCheck<'_> {
        JsonCheck {
            name: &self.name,
            status: self.status_word(),
            detail: &self.detail,
            fix: self.fix(),
        }
    }
}

/// A check as `--json` prints it.
#[derive(Serialize)]
pub struct JsonCheck<'a> {
    /// What was checked.
    pub name: &'a str,
    /// `ok`, `info`, `warn` or `fail`.
    pub status: &'static str,
    /// What was found.
    pub detail: &'a str,
    /// The fix, or null.
    pub fix: Option<&'a str>,
}
