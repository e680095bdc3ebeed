//! [`ExpiringLocks`]: dav-server's in-memory lock system, with timeouts that end locks.
//!
//! `MemLs` records a lock's timeout but never acts on it, and keeps a lock asked
//! for without a timeout for ever: a client that dies while holding a lock would
//! leave the file locked until the server restarts.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use dav_server::davpath::DavPath;
use dav_server::ls::{DavLock, DavLockSystem, LsFuture};
use dav_server::memls::MemLs;
use futures_util::FutureExt;
use parking_lot::Mutex;
use xmltree::Element;

/// The longest a lock lasts without a refresh, whatever the client asks.
pub(crate) const MAX_LOCK_TIMEOUT: Duration = Duration::from_secs(3600);

/// `MemLs`, whose locks end when their timeout passes.
#[derive(Clone, Debug)]
pub(crate) struct ExpiringLocks {
    inner: Box<MemLs>,
    /// Each live lock's path and end, by token.
    ends: Arc<Mutex<HashMap<String, (DavPath, SystemTime)>>>,
}

impl ExpiringLocks {
    pub fn new() -> Self {
        Self {
            inner: MemLs::new(),
            ends: Arc::default(),
        }
    }

    /// Ends every lock whose timeout has passed.
    async fn expire(&self) {
        let now = SystemTime::now();
        let expired: Vec<(String, DavPath)> = {
            let mut ends = self.ends.lock();
            let tokens: Vec<String> = ends
                .iter()
                .filter(|(_, (_, end))| *end <= now)
                .map(|(token, _)| token.clone())
                .collect();
            tokens
                .into_iter()
                .filter_map(|token| ends.remove(&token).map(|(path, _)| (token, path)))
                .collect()
        };
        for (token, path) in expired {
            tracing::debug!("lock {token} on {path} expired");
            // Already gone (unlocked with its resource) is fine.
            let _ = self.inner.unlock(&path, &token).await;
        }
    }

    fn remember(&self, lock: &DavLock) {
        let end = lock
            .timeout_at
            .unwrap_or_else(|| SystemTime::now() + MAX_LOCK_TIMEOUT);
        self.ends
            .lock()
            .insert(lock.token.clone(), ((*lock.path).clone(), end));
    }
}

/// A timeout no longer than [`MAX_LOCK_TIMEOUT`] (infinite included).
fn capped(timeout: Option<Duration>) -> Option<Duration> {
    Some(timeout.map_or(MAX_LOCK_TIMEOUT, |asked| asked.min(MAX_LOCK_TIMEOUT)))
}

impl DavLockSystem for ExpiringLocks {
    fn lock(
        &'_ self,
        path: &DavPath,
        principal: Option<&str>,
        owner: Option<&Element>,
        timeout: Option<Duration>,
        shared: bool,
        deep: bool,
    ) -> LsFuture<'_, Result<DavLock, DavLock>> {
        let (path, principal, owner) = (path.clone(), principal.map(str::to_owned), owner.cloned());
        async move {
            self.expire().await;
            let locked = self
                .inner
                .lock(
                    &path,
                    principal.as_deref(),
                    owner.as_ref(),
                    capped(timeout),
                    shared,
                    deep,
                )
                .await;
            if let Ok(lock) = &locked {
                self.remember(lock);
            }
            locked
        }
        .boxed()
    }

    fn unlock(&'_ self, path: &DavPath, token: &str) -> LsFuture<'_, Result<(), ()>> {
        let (path, token) = (path.clone(), token.to_owned());
        async move {
            self.expire().await;
            self.ends.lock().remove(&token);
            self.inner.unlock(&path, &token).await
        }
        .boxed()
    }

    fn refresh(
        &'_ self,
        path: &DavPath,
        token: &str,
        timeout: Option<Duration>,
    ) -> LsFuture<'_, Result<DavLock, ()>> {
        let (path, token) = (path.clone(), token.to_owned());
        async move {
            self.expire().await;
            let refreshed = self.inner.refresh(&path, &token, capped(timeout)).await;
            if let Ok(lock) = &refreshed {
                self.remember(lock);
            }
            refreshed
        }
        .boxed()
    }

    fn check(
        &'_ self,
        path: &DavPath,
        principal: Option<&str>,
        ignore_principal: bool,
        deep: bool,
        submitted_tokens: &[String],
    ) -> LsFuture<'_, Result<(), DavLock>> {
        let (path, principal, tokens) = (
            path.clone(),
            principal.map(str::to_owned),
            submitted_tokens.to_vec(),
        );
        async move {
            self.expire().await;
            self.inner
                .check(&path, principal.as_deref(), ignore_principal, deep, &tokens)
                .await
        }
        .boxed()
    }

    fn discover(&'_ self, path: &DavPath) -> LsFuture<'_, Vec<DavLock>> {
        let path = path.clone();
        async move {
            self.expire().await;
            self.inner.discover(&path).await
        }
        .boxed()
    }

    fn delete(&'_ self, path: &DavPath) -> LsFuture<'_, Result<(), ()>> {
        let path = path.clone();
        async move {
            self.expire().await;
            self.inner.delete(&path).await
        }
        .boxed()
    }
}
