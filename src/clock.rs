//! The one place that reads the system clock. Everything below the binaries takes the time
//! as an argument (a Unix second, or a [`Clock`]), so tests can move it: expired cookies,
//! expiry buckets, grace periods.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of Unix seconds, injected where a component asks for "now" more than once.
pub type Clock = Arc<dyn Fn() -> u64 + Send + Sync>;

/// Unix seconds now, by the system clock (0 if the clock is before 1970).
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The system clock as a [`Clock`].
pub fn system_clock() -> Clock {
    Arc::new(unix_now)
}
