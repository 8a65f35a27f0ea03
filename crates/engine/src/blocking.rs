//! The one way CPU-bound work leaves an async function in Stratum.
//!
//! Engine and runner functions are `async` because DataFusion and the store are; the stages
//! between (parsing text sources, fitting lifetime models, scoring and placing, building
//! explanations, writing and hashing files) are long and synchronous. They run on tokio's
//! blocking pool through [`blocking`] or [`start`], so an executor thread is never held for
//! seconds: the futures stay `Send`, and they run on any runtime, current-thread included
//! (`block_in_place` would panic there).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Runs `work` on tokio's blocking pool and awaits its result. A panic in `work` resumes in
/// the caller, as if the work had been called in place.
///
/// Dropping the returned future (a timeout, a closed connection) does not stop `work`: it
/// finishes in the background and its result is discarded.
pub async fn blocking<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    start(work).await
}

/// Starts `work` on tokio's blocking pool now; the returned handle is awaited for its result
/// later, so that the caller does other work meanwhile (the runner records a run while its
/// files are written). Must be called within a tokio runtime.
pub fn start<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Started<T> {
    Started(tokio::task::spawn_blocking(work))
}

/// Blocking work under way: a future of its result (see [`start`]).
#[derive(Debug)]
pub struct Started<T>(tokio::task::JoinHandle<T>);

impl<T> Future for Started<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        Pin::new(&mut self.0).poll(cx).map(|joined| match joined {
            Ok(value) => value,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Only a runtime that is shutting down cancels blocking work; nothing awaits it then.
            Err(e) => panic!("blocking work cancelled: {e}"),
        })
    }
}
