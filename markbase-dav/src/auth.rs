//! Who may use the server: anyone, or one user with a password (HTTP Basic).

use std::fmt;
use std::path::Path;

use dav_server::body::Body;
use headers::authorization::Basic;
use headers::{Authorization, HeaderMapExt};
use http::{Request, Response, StatusCode, header};

/// Who may use the server.
#[derive(Clone, Debug)]
pub enum Access {
    /// Anyone who can reach it.
    Anonymous,
    /// Only requests that carry these credentials.
    Basic(Credentials),
}

/// A user name and password (never shown by `Debug`).
#[derive(Clone)]
pub struct Credentials {
    user: String,
    password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

/// Why credentials could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    /// The password file could not be read.
    #[error("cannot read the password file {path}: {cause}")]
    Unreadable {
        /// The file.
        path: String,
        /// The operating system error.
        cause: std::io::Error,
    },
    /// The password file's first line is empty.
    #[error("the password file {0} holds no password (its first line is empty)")]
    EmptyPassword(String),
    /// The user name is empty or holds a `:`, which Basic authentication cannot carry.
    #[error("the user name {0:?} is empty or contains ':'")]
    BadUser(String),
}

impl Credentials {
    /// `user` with the password on the first line of `file` (its line ending dropped).
    pub fn from_password_file(user: &str, file: &Path) -> Result<Self, CredentialsError> {
        let shown = file.display().to_string();
        if user.is_empty() || user.contains(':') {
            return Err(CredentialsError::BadUser(user.to_owned()));
        }
        let text = std::fs::read_to_string(file).map_err(|cause| CredentialsError::Unreadable {
            path: shown.clone(),
            cause,
        })?;
        let password = text.lines().next().unwrap_or_default();
        if password.is_empty() {
            return Err(CredentialsError::EmptyPassword(shown));
        }
        Ok(Self {
            user: user.to_owned(),
            password: password.to_owned(),
        })
    }

    /// Whether `user` and `password` are these, compared in constant time.
    fn admit(&self, user: &str, password: &str) -> bool {
        // Both are compared whatever the first gives, so that timing tells nothing.
        let user_ok = constant_time_eq(user.as_bytes(), self.user.as_bytes());
        let password_ok = constant_time_eq(password.as_bytes(), self.password.as_bytes());
        user_ok & password_ok
    }
}

/// Equality whose time depends on the lengths only.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    let longest = a.len().max(b.len());
    let mut differ = u8::from(a.len() != b.len());
    for i in 0..longest {
        differ |= a.get(i).copied().unwrap_or(0) ^ b.get(i).copied().unwrap_or(0);
    }
    differ == 0
}

impl Access {
    /// The user a request acts as (`None` for anonymous access), or [`Unauthorized`]
    /// for a request without valid credentials.
    pub(crate) fn check<B>(&self, request: &Request<B>) -> Result<Option<String>, Unauthorized> {
        let Self::Basic(credentials) = self else {
            return Ok(None);
        };
        match request.headers().typed_get::<Authorization<Basic>>() {
            Some(Authorization(basic)) if credentials.admit(basic.username(), basic.password()) => {
                Ok(Some(credentials.user.clone()))
            }
            _ => Err(Unauthorized),
        }
    }
}

/// A request without valid credentials.
pub(crate) struct Unauthorized;

impl Unauthorized {
    /// The 401 reply, which says nothing of why.
    pub fn response(self) -> Response<Body> {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static(r#"Basic realm="markbase", charset="UTF-8""#),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
        assert!(constant_time_eq(b"", b""));
    }

    #[test]
    fn password_files_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("password");
        std::fs::write(&file, "s3cret\nignored\n").unwrap();
        let credentials = Credentials::from_password_file("editor", &file).unwrap();
        assert!(credentials.admit("editor", "s3cret"));
        assert!(!credentials.admit("editor", "s3cret\n"));
        assert!(!format!("{credentials:?}").contains("s3cret"));

        std::fs::write(&file, "\nlater").unwrap();
        let err = Credentials::from_password_file("editor", &file).unwrap_err();
        assert!(err.to_string().contains("holds no password"), "{err}");
        let missing = dir.path().join("missing");
        let err = Credentials::from_password_file("editor", &missing).unwrap_err();
        assert!(
            err.to_string().contains(&missing.display().to_string()),
            "{err}"
        );
        assert!(Credentials::from_password_file("a:b", &file).is_err());
        assert!(Credentials::from_password_file("", &file).is_err());
    }
}
