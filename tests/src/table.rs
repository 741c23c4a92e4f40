//! What the benchmarks print: a table with a row per measure (its runs, median, 99th
//! percentile and minimum, in milliseconds), and the wait for the next event of a stream.

use futures_util::{Stream, StreamExt};
use std::time::Duration;

/// A table of measures whose names are at most `width` characters; its header is printed when
/// it is made.
pub struct Table {
    width: usize,
}

impl Table {
    /// Prints the header.
    pub fn new(width: usize) -> Table {
        println!(
            "| {:width$} | {:>5} | {:>10} | {:>10} | {:>10} |",
            "measure", "runs", "median ms", "p99 ms", "min ms"
        );
        println!(
            "|{:-<w$}|{:-<7}|{:-<12}|{:-<12}|{:-<12}|",
            "",
            "",
            "",
            "",
            "",
            w = width + 2
        );
        Table { width }
    }

    /// Prints one measure's row (`samples` must not be empty).
    pub fn row(&self, name: &str, mut samples: Vec<Duration>) {
        samples.sort_unstable();
        let q = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        println!(
            "| {name:width$} | {:>5} | {:>10.2} | {:>10.2} | {:>10.2} |",
            samples.len(),
            ms(q(0.5)),
            ms(q(0.99)),
            ms(samples[0]),
            width = self.width
        );
    }
}

/// The next item of `events` within `deadline`; panics if none comes, or the stream ends.
pub async fn next_within<S: Stream + Unpin>(events: &mut S, deadline: Duration) -> S::Item {
    tokio::time::timeout(deadline, events.next())
        .await
        .expect("an event in time")
        .expect("open")
}
