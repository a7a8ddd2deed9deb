//! The lead-time chart's geometry: per pair of environments (dev → qa, qa → prod, dev → prod)
//! two horizontal bars, the median lead time over the last 30 and the last 90 days, each
//! labelled with its value and sample count. Computed here so the template only places
//! numbers; the page needs no script to draw it. Its size does not grow with the services.

use serde::Serialize;

use super::lead::LeadView;
use crate::history::Span;

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 150.0;
const RIGHT: f64 = 260.0;
const TOP: f64 = 12.0;
const BAR: f64 = 22.0;
const GAP: f64 = 6.0;
const PAIR_GAP: f64 = 20.0;

/// Bar colours with at least 3:1 contrast against the white page (WCAG 1.4.11): Okabe-Ito blue
/// (5.0:1) and vermillion (3.9:1). Each bar is also labelled in words, so colour is not needed
/// to tell them apart.
pub(super) const COLOURS: [&str; 2] = ["#0072b2", "#d55e00"];

/// The chart as the template draws it.
#[derive(Debug, Serialize)]
pub(super) struct Chart {
    pub width: f64,
    pub height: f64,
    pub bars: Vec<Bar>,
    pub labels: Vec<PairLabel>,
    pub desc: String,
    /// No median in either window: the template says so instead of drawing.
    pub empty: bool,
}

#[derive(Debug, Serialize)]
pub(super) struct PairLabel {
    pub text: String,
    pub y: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub colour: &'static str,
    /// `30 days: 2d 4h (31 tags)`.
    pub label: String,
    pub label_x: f64,
    pub label_y: f64,
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// `2d 4h (31 tags)`, or `no promotions` without samples.
fn value(median: Option<Span>, samples: usize) -> String {
    match median {
        Some(span) => format!(
            "{} ({samples} tag{})",
            span.human(),
            if samples == 1 { "" } else { "s" }
        ),
        None => "no promotions".to_string(),
    }
}

/// The chart of `lead`'s medians.
pub(super) fn chart(lead: &LeadView) -> Chart {
    let longest = lead
        .pairs
        .iter()
        .flat_map(|p| [p.median_30d, p.median_90d])
        .flatten()
        .map(|s| s.seconds().max(0))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let plot = WIDTH - LEFT - RIGHT;
    let mut bars = Vec::new();
    let mut labels = Vec::new();
    let mut lines = Vec::new();
    let mut y = TOP;
    for pair in &lead.pairs {
        labels.push(PairLabel {
            text: format!("{} → {}", pair.from, pair.to),
            y: round(y + BAR + GAP / 2.0 + 5.0),
        });
        let windows = [
            ("30 days", pair.median_30d, pair.samples_30d),
            ("90 days", pair.median_90d, pair.samples_90d),
        ];
        let mut texts = Vec::new();
        for (i, (window, median, samples)) in windows.into_iter().enumerate() {
            let secs = median.map_or(0, |s| s.seconds().max(0)) as f64;
            // A median of zero still shows a sliver, so the bar is seen to be there.
            let width = if median.is_some() {
                (secs / longest * plot).max(2.0)
            } else {
                0.0
            };
            let text = format!("{window}: {}", value(median, samples));
            bars.push(Bar {
                x: LEFT,
                y: round(y),
                width: round(width),
                height: BAR,
                colour: COLOURS[i],
                label_x: round(LEFT + width + 8.0),
                label_y: round(y + BAR / 2.0 + 5.0),
                label: text.clone(),
            });
            texts.push(text);
            y += BAR + GAP;
        }
        lines.push(format!(
            "{} to {}: {}",
            pair.from,
            pair.to,
            texts.join(", ")
        ));
        y += PAIR_GAP;
    }
    let empty = !lead
        .pairs
        .iter()
        .any(|p| p.median_30d.is_some() || p.median_90d.is_some());
    let desc = if empty {
        "No promotion landed in the last 90 days, or the history of the repository is not available."
            .to_string()
    } else {
        format!(
            "Median lead time between environments over the last 30 and 90 days. {}.",
            lines.join("; ")
        )
    };
    Chart {
        width: WIDTH,
        height: round(y.max(TOP + 40.0)),
        bars,
        labels,
        desc,
        empty,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;
    use crate::history::PairStats;

    fn pair(from: &str, to: &str, d30: Option<i64>, d90: Option<i64>) -> PairStats {
        PairStats {
            from: from.into(),
            to: to.into(),
            median_30d: d30.map(|h| Span(TimeDelta::hours(h))),
            median_90d: d90.map(|h| Span(TimeDelta::hours(h))),
            samples_30d: usize::from(d30.is_some()) * 3,
            samples_90d: usize::from(d90.is_some()) * 9,
        }
    }

    #[test]
    fn bars_scale_to_the_longest_median_and_say_their_value_in_words() {
        let lead = LeadView {
            pairs: vec![
                pair("dev", "qa", Some(12), Some(24)),
                pair("qa", "prod", None, Some(96)),
            ],
            slowest: Vec::new(),
            history_known: true,
        };
        let chart = chart(&lead);
        assert!(!chart.empty);
        let widths: Vec<f64> = chart.bars.iter().map(|b| b.width).collect();
        let plot = WIDTH - LEFT - RIGHT;
        assert_eq!(
            widths,
            [round(plot / 8.0), round(plot / 4.0), 0.0, round(plot)]
        );
        let labels: Vec<&str> = chart.bars.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "30 days: 12h (3 tags)",
                "90 days: 1d (9 tags)",
                "30 days: no promotions",
                "90 days: 4d (9 tags)"
            ]
        );
        assert_eq!(chart.labels[1].text, "qa → prod");
        assert!(chart.desc.contains("qa to prod: 30 days: no promotions"));
    }

    #[test]
    fn without_medians_the_chart_is_empty() {
        let lead = LeadView {
            pairs: vec![pair("dev", "qa", None, None)],
            slowest: Vec::new(),
            history_known: false,
        };
        assert!(chart(&lead).empty);
    }
}
