//! The Markdown report: one table per measurement, each devfd figure beside its floor.

use std::fmt::Write as _;

/// What a row must reach.
#[derive(Debug, Clone, Copy)]
pub enum Goal {
    /// devfd ÷ floor at most this (latencies).
    RatioAtMost(f64),
    /// devfd ÷ floor at least this (throughputs).
    RatioAtLeast(f64),
    /// The devfd value at most this (absolute), in the row's unit.
    AtMost(f64, &'static str),
    /// The devfd value exactly this.
    Equals(f64),
    /// Informational.
    None,
}

/// One line of a table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What is measured.
    pub metric: String,
    /// The devfd figure, formatted.
    pub devfd: String,
    /// The floor figure, formatted ("–" if none).
    pub floor: String,
    /// devfd ÷ floor.
    pub ratio: Option<f64>,
    /// The goal.
    pub goal: Goal,
    /// Whether the goal is met (`None` for informational rows).
    pub pass: Option<bool>,
}

impl Row {
    /// A devfd value against a floor value with a ratio goal (`unit` for display).
    pub fn ratio(metric: impl Into<String>, devfd: f64, floor: f64, unit: &str, goal: Goal) -> Row {
        let ratio = (floor > 0.0).then(|| devfd / floor);
        let pass = match (goal, ratio) {
            (Goal::RatioAtMost(g), Some(r)) => Some(r <= g),
            (Goal::RatioAtLeast(g), Some(r)) => Some(r >= g),
            (Goal::None, _) => None,
            _ => Some(false),
        };
        Row {
            metric: metric.into(),
            devfd: fmt_value(devfd, unit),
            floor: fmt_value(floor, unit),
            ratio,
            goal,
            pass,
        }
    }

    /// An absolute devfd value (no floor).
    pub fn value(metric: impl Into<String>, devfd: f64, unit: &str, goal: Goal) -> Row {
        let pass = match goal {
            Goal::AtMost(g, _) => Some(devfd <= g),
            Goal::Equals(g) => Some(devfd == g),
            _ => None,
        };
        Row {
            metric: metric.into(),
            devfd: fmt_value(devfd, unit),
            floor: "–".into(),
            ratio: None,
            goal,
            pass,
        }
    }

    /// A row that could not be measured.
    pub fn failed(metric: impl Into<String>, why: impl std::fmt::Display) -> Row {
        Row {
            metric: metric.into(),
            devfd: format!("error: {why}"),
            floor: "–".into(),
            ratio: None,
            goal: Goal::None,
            pass: Some(false),
        }
    }
}

fn fmt_value(v: f64, unit: &str) -> String {
    let digits = if v.fract() == 0.0 || v.abs() >= 100.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else {
        2
    };
    if unit.is_empty() {
        format!("{v:.digits$}")
    } else {
        format!("{v:.digits$} {unit}")
    }
}

/// One table with its notes.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// Heading (level 4 in the report).
    pub title: String,
    /// The rows.
    pub rows: Vec<Row>,
    /// Lines printed under the table.
    pub notes: Vec<String>,
}

impl Section {
    /// An empty section.
    pub fn new(title: impl Into<String>) -> Section {
        Section {
            title: title.into(),
            ..Section::default()
        }
    }
}

/// The whole report.
#[derive(Debug, Default)]
pub struct Report {
    /// Lines about the run (machine, commit, method).
    pub header: Vec<String>,
    /// The tables.
    pub sections: Vec<Section>,
}

impl Report {
    /// Goals met and goals checked.
    pub fn score(&self) -> (usize, usize) {
        let checked = self
            .sections
            .iter()
            .flat_map(|s| &s.rows)
            .filter_map(|r| r.pass);
        checked.fold((0, 0), |(ok, n), p| (ok + usize::from(p), n + 1))
    }

    /// Markdown, starting with heading level 3 for the sections.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            let _ = writeln!(out, "{line}");
        }
        let (ok, n) = self.score();
        let _ = writeln!(out, "\n**Goals met: {ok} of {n}.**");
        for s in &self.sections {
            let _ = writeln!(out, "\n### {}\n", s.title);
            let _ = writeln!(out, "| metric | devfd | floor | ratio | goal | result |");
            let _ = writeln!(out, "|---|---:|---:|---:|---|---|");
            for r in &s.rows {
                let ratio = r.ratio.map_or("–".into(), |x| format!("{x:.2}×"));
                let goal = match r.goal {
                    Goal::RatioAtMost(g) => format!("≤ {g:.2}×"),
                    Goal::RatioAtLeast(g) => format!("≥ {g:.2}×"),
                    Goal::AtMost(g, unit) => format!("≤ {g} {unit}"),
                    Goal::Equals(g) => format!("= {g}"),
                    Goal::None => "–".into(),
                };
                let result = match r.pass {
                    Some(true) => "pass",
                    Some(false) => "**FAIL**",
                    None => "info",
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {ratio} | {goal} | {result} |",
                    r.metric, r.devfd, r.floor
                );
            }
            if !s.notes.is_empty() {
                out.push('\n');
                for n in &s.notes {
                    let _ = writeln!(out, "{n}");
                }
            }
        }
        out
    }
}
