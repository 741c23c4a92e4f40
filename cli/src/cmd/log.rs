//! `layer-cake log`: a role's output, from its log in the home.

use anyhow::{anyhow, bail, Result};
use clap::Args;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use layer_cake::home::log::{Followed, LogFollower, LogLine};
use layer_cake::home::Home;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

/// How many lines `log` shows when given no range.
const DEFAULT_COUNT: usize = 20;

/// Show a role's output (what it printed on stdout and stderr, with lines of group-cake's own
/// marked `---` when it started and ended).
///
/// By default the last 20 lines. A range picks lines by time: --from/--to (UTC, as
/// 2026-11-22T21:07:05Z or 2026-11-22 21:07:05; local time with --clock), --back 5m (the last
/// five minutes), --span 30s (that long from the start of the range), or --start=N (the run
/// numbered N in `layer-cake history`). --follow keeps printing lines as they come.
#[derive(Args)]
pub struct Log {
    /// The role.
    role: String,
    /// Show at most the last N lines (of the range, if one is given).
    #[arg(long, value_name = "N")]
    count: Option<usize>,
    /// Lines from this time on.
    #[arg(long, value_name = "TIME", conflicts_with_all = ["back", "start"])]
    from: Option<String>,
    /// Lines before this time.
    #[arg(long, value_name = "TIME", conflicts_with = "span")]
    to: Option<String>,
    /// Read and show times in the local time zone, not UTC.
    #[arg(long)]
    clock: bool,
    /// Lines from this long ago on (5m, 1h 30m, 90s).
    #[arg(long, value_name = "DURATION", conflicts_with = "start")]
    back: Option<SignedDuration>,
    /// Lines within this long of the range's start.
    #[arg(long, value_name = "DURATION")]
    span: Option<SignedDuration>,
    /// Lines of the run numbered N in `layer-cake history`.
    #[arg(long, value_name = "N")]
    start: Option<usize>,
    /// Keep printing new lines as the role writes them (Ctrl-C to end).
    #[arg(short, long)]
    follow: bool,
}

impl Log {
    pub fn run(self, home_path: &Path) -> Result<()> {
        let home = Home::open(home_path)?;
        home.role(&self.role)?;
        let zone = if self.clock {
            TimeZone::system()
        } else {
            TimeZone::UTC
        };
        let mut from = self.from.as_deref().map(|t| parse_time(t, &zone)).transpose()?;
        let mut to = self.to.as_deref().map(|t| parse_time(t, &zone)).transpose()?;
        if let Some(back) = self.back {
            from = Some(Timestamp::now() - back.abs());
        }
        if let Some(n) = self.start {
            let runs = home.history(&self.role)?;
            let run = runs.get(n).ok_or_else(|| {
                anyhow!(
                    "no run {n} of {:?} (its history has {} runs, numbered from 0)",
                    self.role,
                    runs.len()
                )
            })?;
            from = Some(run.start);
            to = run.end.map(|end| end + SignedDuration::from_millis(1));
        }
        if let Some(span) = self.span {
            let Some(start) = from else {
                bail!("--span needs the range's start: --from, --back or --start");
            };
            to = Some(start + span.abs());
        }
        let ranged = from.is_some() || to.is_some();
        // Following: from where the follower starts, so no line is shown twice or missed.
        let follower = self
            .follow
            .then(|| LogFollower::from_end(&home, &self.role))
            .transpose()?;
        let stored = match &follower {
            Some(f) => f.history()?,
            None => home.log_lines(&self.role)?,
        };
        let lines: Vec<LogLine> = stored
            .into_iter()
            .filter(|l| from.is_none_or(|f| l.at >= f) && to.is_none_or(|t| l.at < t))
            .collect();
        let count = self
            .count
            .unwrap_or(if ranged { usize::MAX } else { DEFAULT_COUNT });
        let mut out = std::io::stdout().lock();
        for line in &lines[lines.len().saturating_sub(count)..] {
            print_line(&mut out, line, &zone)?;
        }
        out.flush()?;
        if let Some(follower) = follower {
            follow(follower, &zone)?;
        }
        Ok(())
    }
}

fn parse_time(text: &str, zone: &TimeZone) -> Result<Timestamp> {
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    let civil: jiff::civil::DateTime = text.parse().map_err(|_| {
        anyhow!(
            "cannot read {text:?} as a time: give 2026-11-22T21:07:05Z, 2026-11-22 21:07:05 or 2026-11-22"
        )
    })?;
    Ok(civil.to_zoned(zone.clone())?.timestamp())
}

fn print_line(out: &mut impl Write, line: &LogLine, zone: &TimeZone) -> std::io::Result<()> {
    let at = if *zone == TimeZone::UTC {
        line.at.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    } else {
        line.at
            .to_zoned(zone.clone())
            .strftime("%Y-%m-%d %H:%M:%S%.3f")
            .to_string()
    };
    writeln!(out, "{at} {} {}", line.pid, line.text)
}

/// Prints lines added to the role's log from now on, following it as its files are moved
/// aside; where files were moved away before they could be read, says so.
fn follow(mut follower: LogFollower, zone: &TimeZone) -> Result<()> {
    loop {
        let found = follower.next_lines()?;
        if found.is_empty() {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        let mut out = std::io::stdout().lock();
        for f in found {
            match f {
                Followed::Line(line) => print_line(&mut out, &line, zone)?,
                Followed::Gap(files) => writeln!(
                    out,
                    "--- {files} log file{} moved away before they could be read: lines are missing here \
                     (keep more with --log-files)",
                    if files == 1 { " was" } else { "s were" }
                )?,
            }
        }
        out.flush()?;
    }
}
