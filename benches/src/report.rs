//! The suite's output: one row per figure, with its floor and target, printed as a Markdown
//! table (and each row also as it is measured, so a long run shows progress).

use std::time::Duration;

/// One measured figure.
pub(crate) struct Row {
    pub(crate) measure: String,
    pub(crate) result: String,
    pub(crate) p50: Option<Duration>,
    pub(crate) p99: Option<Duration>,
    pub(crate) floor: String,
    pub(crate) target: String,
    /// `Some(true)` met, `Some(false)` missed, `None` no target.
    pub(crate) met: Option<bool>,
}

impl Row {
    pub(crate) fn new(measure: impl Into<String>, result: impl Into<String>) -> Row {
        Row {
            measure: measure.into(),
            result: result.into(),
            p50: None,
            p99: None,
            floor: String::new(),
            target: String::new(),
            met: None,
        }
    }

    pub(crate) fn latency(mut self, p50: Duration, p99: Duration) -> Row {
        self.p50 = Some(p50);
        self.p99 = Some(p99);
        self
    }

    pub(crate) fn floor(mut self, floor: impl Into<String>) -> Row {
        self.floor = floor.into();
        self
    }

    pub(crate) fn target(mut self, target: impl Into<String>, met: bool) -> Row {
        self.target = target.into();
        self.met = Some(met);
        self
    }
}

#[derive(Default)]
pub(crate) struct Table {
    rows: Vec<Row>,
}

impl Table {
    pub(crate) fn push(&mut self, row: Row) {
        println!("{}", line(&row));
        self.rows.push(row);
    }

    pub(crate) fn print(&self) {
        println!("| measure | result | p50 | p99 | floor (same run) | target |");
        println!("|---|---:|---:|---:|---|---|");
        for row in &self.rows {
            println!("{}", line(row));
        }
    }
}

fn line(row: &Row) -> String {
    let mark = match row.met {
        Some(true) => " ✔",
        Some(false) => " ✘",
        None => "",
    };
    format!(
        "| {} | {} | {} | {} | {} | {}{mark} |",
        row.measure,
        row.result,
        row.p50.map(micros).unwrap_or_default(),
        row.p99.map(micros).unwrap_or_default(),
        row.floor,
        row.target,
    )
}

/// A duration in the unit that reads best.
pub(crate) fn micros(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 10.0 {
        format!("{us:.2} µs")
    } else if us < 1000.0 {
        format!("{us:.1} µs")
    } else {
        format!("{:.2} ms", us / 1000.0)
    }
}

/// `1234567.8` → `1,234,568`.
pub(crate) fn count(x: f64) -> String {
    let digits = format!("{:.0}", x.max(0.0));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Latency samples: p50 and p99.
pub(crate) fn percentiles(samples: &mut [Duration]) -> (Duration, Duration) {
    if samples.is_empty() {
        return (Duration::ZERO, Duration::ZERO);
    }
    samples.sort_unstable();
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    (at(0.50), at(0.99))
}
