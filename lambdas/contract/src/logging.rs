//! The JSON log format of both Lambdas: one JSON object per line, the event's fields at the top
//! level next to `timestamp`, `level` and `message`, and the fields of the span the event happened
//! in (if any) under `span`. CloudWatch Logs Insights reads such lines without parsing.
//!
//! Filtered by `RUST_LOG` (`info` when unset or invalid).

use std::sync::{Arc, Mutex, PoisonError};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::util::SubscriberInitExt as _;

/// The log format, writing to `writer`: the Lambdas pass stdout, tests a buffer.
pub fn json_subscriber<W>(writer: W) -> impl tracing::Subscriber + Send + Sync
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(true)
        .with_span_list(false)
        .with_target(false)
        .with_ansi(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .finish()
}

/// Installs [`json_subscriber`] on stdout as the global subscriber (and routes `log` records of
/// dependencies into it).
pub fn init_json_logs() {
    // Ignore "already set": only possible if something else installed one first.
    let _ = json_subscriber(std::io::stdout).try_init();
}

/// A [`MakeWriter`] into memory, for tests that read the log lines back.
#[derive(Clone, Default)]
pub struct LogCapture(Arc<Mutex<Vec<u8>>>);

impl LogCapture {
    /// Everything written so far.
    pub fn text(&self) -> String {
        let bytes = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

impl std::io::Write for LogCapture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for LogCapture {
    type Writer = LogCapture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_flat_json_line_with_the_current_span() {
        let buffer = LogCapture::default();
        tracing::subscriber::with_default(json_subscriber(buffer.clone()), || {
            tracing::info!(decision = "skip", "outside any span");
            let span = tracing::info_span!("invocation", request_id = "req-1");
            span.in_scope(|| tracing::warn!(layer = "sha256:00", "inside"));
        });
        let text = buffer.text();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["message"], "outside any span");
        assert_eq!(lines[0]["decision"], "skip");
        assert_eq!(lines[0]["level"], "INFO");
        assert!(lines[0]["timestamp"].is_string());
        assert!(lines[0].get("span").is_none(), "{text}");
        assert!(lines[0].get("target").is_none(), "{text}");
        assert_eq!(lines[1]["layer"], "sha256:00");
        assert_eq!(lines[1]["span"]["name"], "invocation");
        assert_eq!(lines[1]["span"]["request_id"], "req-1");
        assert!(lines[1].get("spans").is_none(), "{text}");
    }
}
