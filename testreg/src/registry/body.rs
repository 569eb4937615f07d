//! The one response body type: a script of byte slices, pauses and an
//! optional abort.
//!
//! Normal responses are a single `Bytes` slice of a stored blob, handed out
//! in frames of at most 1 MiB without copying, so a multi-gigabyte blob
//! served to many connections costs no more than the socket writes. Faults
//! are the same script with a pause, a replaced byte or an abort in it.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame};
use tokio::time::Sleep;

/// Largest frame handed to hyper: big enough for few syscalls, small enough
/// to keep per-connection buffering modest.
const MAX_FRAME: usize = 1 << 20;

/// How long to wait before an abort. hyper drops whatever it still buffers
/// when a body fails, so without this pause (during which it flushes) the
/// client would not even see the headers of a "drop after N bytes" answer.
const SETTLE_BEFORE_ABORT: Duration = Duration::from_millis(50);

/// One step of a body script.
#[derive(Debug)]
pub(crate) enum Step {
    /// Send these bytes.
    Data(Bytes),
    /// Wait this long before the next step.
    Pause(Duration),
    /// Send these bytes `piece` at a time, waiting `pause` before each.
    Trickle {
        data: Bytes,
        piece: usize,
        pause: Duration,
    },
    /// Fail the body, which makes hyper abort the connection mid-response
    /// (after a short pause that lets everything before it reach the client).
    Abort,
}

/// A response body played from a script. Its size hint is left unknown on
/// purpose: the handlers always set `Content-Length` themselves, and some
/// faults need it to disagree with the bytes actually sent.
#[derive(Debug, Default)]
pub(crate) struct ScriptedBody {
    steps: VecDeque<Step>,
    pause: Option<Pin<Box<Sleep>>>,
    settled: bool,
    /// Bytes per second the data steps are paced at, when throttled.
    pace: Option<u64>,
}

impl ScriptedBody {
    /// The given bytes.
    pub fn bytes(data: impl Into<Bytes>) -> ScriptedBody {
        ScriptedBody::script(vec![Step::Data(data.into())])
    }

    /// An arbitrary script.
    pub fn script(steps: Vec<Step>) -> ScriptedBody {
        ScriptedBody {
            steps: steps
                .into_iter()
                .filter(
                    |s| !matches!(s, Step::Data(b) | Step::Trickle { data: b, .. } if b.is_empty()),
                )
                .collect(),
            pause: None,
            settled: false,
            pace: None,
        }
    }

    /// Aborts the connection once the rest of the script has played.
    pub fn abort_at_end(&mut self) {
        self.steps.push_back(Step::Abort);
    }

    /// Delivers the data at no more than `bytes_per_sec` (at least 1): small
    /// frames, each followed by the pause its size costs at that rate.
    pub fn paced(mut self, bytes_per_sec: u64) -> ScriptedBody {
        self.pace = Some(bytes_per_sec.max(1));
        self
    }
}

impl Body for ScriptedBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        loop {
            if let Some(pause) = this.pause.as_mut() {
                match pause.as_mut().poll(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(()) => this.pause = None,
                }
            }
            match this.steps.pop_front() {
                None => return Poll::Ready(None),
                Some(Step::Pause(duration)) => {
                    this.pause = Some(Box::pin(tokio::time::sleep(duration)));
                }
                Some(Step::Trickle {
                    mut data,
                    piece,
                    pause,
                }) => {
                    let rest = data.split_off(piece.min(data.len()));
                    if !rest.is_empty() {
                        this.steps.push_front(Step::Trickle {
                            data: rest,
                            piece,
                            pause,
                        });
                    }
                    this.steps.push_front(Step::Data(data));
                    this.pause = Some(Box::pin(tokio::time::sleep(pause)));
                }
                Some(Step::Abort) if !this.settled => {
                    this.settled = true;
                    this.steps.push_front(Step::Abort);
                    this.pause = Some(Box::pin(tokio::time::sleep(SETTLE_BEFORE_ABORT)));
                }
                Some(Step::Abort) => {
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "testreg: injected connection drop",
                    ))));
                }
                Some(Step::Data(mut data)) => {
                    // Paced frames last about 20 ms each at the given rate.
                    let frame = this.pace.map_or(MAX_FRAME, |rate| {
                        usize::try_from(rate / 50)
                            .unwrap_or(MAX_FRAME)
                            .clamp(1024, MAX_FRAME)
                    });
                    if data.len() > frame {
                        let rest = data.split_off(frame);
                        this.steps.push_front(Step::Data(rest));
                    }
                    if let Some(rate) = this.pace {
                        let cost = Duration::from_secs_f64(data.len() as f64 / rate as f64);
                        this.steps.push_front(Step::Pause(cost));
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.steps.is_empty() && self.pause.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn large_data_is_split_into_frames_without_copying() {
        let data = Bytes::from(vec![7u8; MAX_FRAME * 2 + 5]);
        let mut body = ScriptedBody::bytes(data.clone());
        let mut sizes = Vec::new();
        let mut total = Vec::new();
        while let Some(frame) = body.frame().await {
            let chunk = frame.expect("no error").into_data().expect("data");
            sizes.push(chunk.len());
            total.extend_from_slice(&chunk);
        }
        assert_eq!(sizes, vec![MAX_FRAME, MAX_FRAME, 5]);
        assert_eq!(total, data);
    }

    #[tokio::test]
    async fn paced_data_takes_its_time() {
        let data = Bytes::from(vec![1u8; 200_000]);
        let mut body = ScriptedBody::bytes(data.clone()).paced(1_000_000);
        let started = tokio::time::Instant::now();
        let mut total = Vec::new();
        while let Some(frame) = body.frame().await {
            let chunk = frame.expect("no error").into_data().expect("data");
            assert!(chunk.len() <= 20_000);
            total.extend_from_slice(&chunk);
        }
        assert_eq!(total, data);
        // 200 kB at 1 MB/s: 0.2 s (the last frame's pause included).
        assert!(started.elapsed() >= Duration::from_millis(190));
    }

    #[tokio::test]
    async fn abort_yields_an_error_after_the_data() {
        let mut body = ScriptedBody::script(vec![
            Step::Data(Bytes::from_static(b"ab")),
            Step::Pause(Duration::from_millis(1)),
            Step::Abort,
        ]);
        assert!(body.frame().await.expect("frame").is_ok());
        assert!(body.frame().await.expect("frame").is_err());
    }
}
