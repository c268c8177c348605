//! The one place where tokio's clock meets the machine's [`Instant`].

use core::time::Duration;

use heartbeat_core::Instant;

/// Maps `tokio::time::Instant` to the machine's nanoseconds-since-origin time.
///
/// The origin is captured when the clock is made (when a connection, or a
/// reconnecting client, starts). Reading `tokio::time::Instant` rather than
/// `std::time::Instant` is what makes `tokio::time::pause` tests exact.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: tokio::time::Instant,
}

impl Clock {
    /// A clock whose origin is now.
    pub fn start() -> Clock {
        Clock {
            origin: tokio::time::Instant::now(),
        }
    }

    /// The current time as the machine sees it.
    pub fn now(&self) -> Instant {
        self.from_tokio(tokio::time::Instant::now())
    }

    /// Converts a tokio instant (clamped to the origin if earlier).
    pub fn from_tokio(&self, t: tokio::time::Instant) -> Instant {
        Instant::from_duration(t.saturating_duration_since(self.origin))
    }

    /// Converts a machine instant back to tokio's clock, for `sleep_until`.
    pub fn to_tokio(&self, at: Instant) -> tokio::time::Instant {
        self.origin
            .checked_add(at.as_duration())
            // Only a deadline centuries away can overflow; a year is as good as never.
            .unwrap_or_else(|| self.origin + FAR_FUTURE)
    }

    /// Converts a machine instant to `std::time::Instant` (through tokio's clock).
    pub fn to_std(&self, at: Instant) -> std::time::Instant {
        self.to_tokio(at).into_std()
    }

    /// The origin on tokio's clock.
    pub fn origin(&self) -> tokio::time::Instant {
        self.origin
    }
}

/// Sleeps until `at`, or forever when nothing is armed.
pub(crate) async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => core::future::pending().await,
    }
}

const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 3600);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn round_trips_through_the_paused_clock() {
        let clock = Clock::start();
        assert_eq!(clock.now(), Instant::ZERO);
        tokio::time::advance(Duration::from_millis(250)).await;
        assert_eq!(clock.now(), Instant::from_millis(250));
        let back = clock.to_tokio(Instant::from_millis(250));
        assert_eq!(back, tokio::time::Instant::now());
        assert_eq!(
            clock.from_tokio(clock.origin() - Duration::from_secs(1)),
            Instant::ZERO
        );
    }
}
