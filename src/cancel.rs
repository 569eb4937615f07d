//! Cancelling a running operation from another thread.

use tokio_util::sync::CancellationToken;

/// A token that cancels the operations it is passed to. Cheap to clone;
/// `cancel` may be called from any thread, at any time, any number of times.
#[derive(Clone, Debug, Default)]
pub struct CancelToken(pub(crate) CancellationToken);

impl CancelToken {
    /// A token not yet cancelled.
    pub fn new() -> CancelToken {
        CancelToken(CancellationToken::new())
    }

    /// Cancels every operation running with this token (and any started
    /// with it later). They return `Cancelled` promptly.
    pub fn cancel(&self) {
        self.0.cancel();
    }

    /// Whether `cancel` was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.is_cancelled()
    }
}
