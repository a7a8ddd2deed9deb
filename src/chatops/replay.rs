//! Slack request signatures already used. A signature covers the timestamp and the body, and
//! [`super::slack::verify`] accepts it for [`super::slack::MAX_SKEW`] seconds either side of
//! its timestamp, so anyone who captures one request (a proxy log, a mirror) could send it again
//! within that window. Each accepted signature is remembered until it could no longer pass
//! `verify`, and a second use is refused. Memory is bounded: at most `capacity` signatures are
//! kept; when that many are live the request is refused rather than an entry forgotten (only
//! requests signed with the secret get this far). No I/O; `now` is an argument.

use std::collections::HashMap;
use std::sync::Mutex;

use super::slack::MAX_SKEW;

/// How many live signatures are kept by default: far above what people type in 10 minutes.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// Why a verified request is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ReplayError {
    /// This exact signature was already accepted.
    #[error("this signed request was already received (a replay)")]
    Replayed,
    /// `capacity` signatures are live: too many signed requests in the window.
    #[error("too many signed requests in the last 300 s; refusing until some expire")]
    Full,
}

/// The signatures seen, each with the Unix second after which `verify` refuses it anyway.
#[derive(Debug)]
pub struct SeenSignatures {
    seen: Mutex<HashMap<[u8; 32], i64>>,
    capacity: usize,
}

impl Default for SeenSignatures {
    fn default() -> Self {
        Self::new(DEFAULT_CAPACITY)
    }
}

impl SeenSignatures {
    /// Remembers at most `capacity` live signatures.
    pub fn new(capacity: usize) -> Self {
        Self {
            seen: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// Records the signature of a request `verify` accepted (`signature` as in
    /// `X-Slack-Signature`, `timestamp` its `X-Slack-Request-Timestamp`); `Err` when it was seen
    /// before or the store is full of live entries.
    pub fn record(&self, signature: &str, timestamp: i64, now: i64) -> Result<(), ReplayError> {
        let key = Self::key(signature);
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.get(&key).is_some_and(|expires| *expires >= now) {
            return Err(ReplayError::Replayed);
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, expires| *expires >= now);
            if seen.len() >= self.capacity {
                return Err(ReplayError::Full);
            }
        }
        seen.insert(key, timestamp.saturating_add(MAX_SKEW));
        Ok(())
    }

    /// How many signatures are kept (expired ones included until the next purge).
    pub fn len(&self) -> usize {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether none is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The signature's MAC bytes (hex case does not make a new signature); any other text is
    /// hashed so that it still has one key.
    fn key(signature: &str) -> [u8; 32] {
        let hex = signature.strip_prefix("v0=").unwrap_or(signature);
        let mut key = [0u8; 32];
        if hex::decode_to_slice(hex, &mut key).is_err() {
            use sha2::Digest;
            key = sha2::Sha256::digest(signature.as_bytes()).into();
        }
        key
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SIG: &str = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503";

    fn sig(n: u8) -> String {
        format!("v0={}", hex::encode([n; 32]))
    }

    #[test]
    fn a_signature_is_accepted_once_within_its_window() {
        let seen = SeenSignatures::new(10);
        assert_eq!(seen.record(SIG, 1000, 1000), Ok(()));
        assert_eq!(seen.record(SIG, 1000, 1001), Err(ReplayError::Replayed));
        assert_eq!(
            seen.record(&SIG.to_uppercase().replace("V0=", "v0="), 1000, 1200),
            Err(ReplayError::Replayed),
            "hex case makes no new signature"
        );
        assert_eq!(
            seen.record(SIG, 1000, 1000 + MAX_SKEW),
            Err(ReplayError::Replayed)
        );
        // Past the window verify refuses it as stale; the entry may go.
        assert_eq!(seen.record(SIG, 1000, 1001 + MAX_SKEW), Ok(()));
        assert_eq!(seen.record(&sig(1), 1000, 1000), Ok(()));
    }

    #[test]
    fn memory_is_bounded_and_expired_entries_make_room() {
        let seen = SeenSignatures::new(3);
        for n in 0..3 {
            assert_eq!(seen.record(&sig(n), 1000, 1000), Ok(()));
        }
        assert_eq!(seen.record(&sig(9), 1000, 1000), Err(ReplayError::Full));
        assert_eq!(seen.len(), 3);
        // Once the first three expire they are purged to make room.
        assert_eq!(seen.record(&sig(9), 1400, 1400), Ok(()));
        assert_eq!(seen.len(), 1);
    }
}
