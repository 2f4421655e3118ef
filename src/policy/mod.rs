//! The pure decision core: what happens to a batch after each invocation.
//!
//! No I/O and no clock of its own: `outcome` turns what a function answered into one of the
//! spec's outcomes, `batch_retry` is the state machine that decides checkpoint / retry /
//! bisect / discard from those outcomes and `now`, `backoff` computes waits, and `window`
//! is the tumbling window lifecycle (spec 2.6). This is where AWS fidelity lives, so it
//! is tested exhaustively in isolation.

pub mod backoff;
pub mod batch_retry;
pub mod outcome;
pub mod window;

pub use batch_retry::{BatchRetry, Discard, Next, Resolution, RetryLimits, Segment, Step};
pub use outcome::{classify, Outcome};
