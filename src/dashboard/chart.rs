//! The lead-time chart's geometry: one horizontal lane per environment, time along the x axis,
//! and per tag its landing in each environment as points joined by a line. Computed here so
//! the template only places numbers; the page needs no script to draw it.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use super::{DashboardData, LeadPoint};
use crate::policy::gate::human;

/// The most recent tags drawn; older ones would only crowd the chart.
pub(super) const MAX_SERIES: usize = 12;

const WIDTH: f64 = 1200.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 24.0;
const LANE: f64 = 64.0;
const LEGEND_COLUMN: f64 = 280.0;
const LEGEND_ROW: f64 = 24.0;

/// Okabe-Ito colours, distinguishable with the common colour-vision deficiencies.
const PALETTE: [&str; 7] = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#000000",
];

/// Tick steps, in hours, from fine to coarse.
const STEPS_HOURS: [i64; 12] = [1, 3, 6, 12, 24, 48, 96, 168, 336, 720, 2160, 8760];

/// The chart as the template draws it.
#[derive(Debug, Serialize)]
pub(super) struct Chart {
    pub width: f64,
    pub height: f64,
    pub plot_left: f64,
    pub plot_right: f64,
    pub plot_top: f64,
    pub axis_y: f64,
    pub tick_label_y: f64,
    pub lanes: Vec<Lane>,
    pub ticks: Vec<Tick>,
    pub now_x: f64,
    pub series: Vec<Series>,
    pub desc: String,
    pub empty: bool,
    pub left_out: usize,
}

#[derive(Debug, Serialize)]
pub(super) struct Lane {
    pub name: String,
    pub y: f64,
    pub label_y: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct Tick {
    pub x: f64,
    pub label: String,
}

#[derive(Debug, Serialize)]
pub(super) struct Series {
    pub label: String,
    pub lead: String,
    pub colour: String,
    pub points: String,
    pub dots: Vec<Dot>,
    pub legend_x: f64,
    pub legend_y: f64,
    pub legend_line_end: f64,
    pub legend_text_x: f64,
    pub legend_text_y: f64,
}

#[derive(Debug, Serialize)]
pub(super) struct Dot {
    pub x: f64,
    pub y: f64,
    pub title: String,
}

fn round(v: f64) -> f64 {
    (v * 10.0).round() / 10.0
}

/// The chart of the most recent [`MAX_SERIES`] tags in `data.lead_points`.
pub(super) fn chart(data: &DashboardData) -> Chart {
    let lanes_count = data.environments.len().max(1);
    let rank = |env: &str| data.environments.iter().position(|e| e == env);
    // (service, tag) -> points in promotion order.
    let mut grouped: BTreeMap<(&str, &str), Vec<&LeadPoint>> = BTreeMap::new();
    for point in &data.lead_points {
        if rank(&point.env).is_some() {
            grouped
                .entry((point.service.as_str(), point.tag.as_str()))
                .or_default()
                .push(point);
        }
    }
    let mut all: Vec<_> = grouped.into_iter().collect();
    for (_, points) in &mut all {
        points.sort_by_key(|p| rank(&p.env));
    }
    all.sort_by_key(|((service, tag), points)| {
        (points.iter().map(|p| p.landed).min(), *service, *tag)
    });
    let left_out = all.len().saturating_sub(MAX_SERIES);
    let shown = &all[left_out..];

    let now = data.generated_at;
    let times = shown.iter().flat_map(|(_, ps)| ps.iter().map(|p| p.landed));
    let (start, end) = times.fold((now, now), |(lo, hi), t| (lo.min(t), hi.max(t)));
    let span = end - start;
    let pad = if span <= TimeDelta::zero() {
        TimeDelta::hours(12)
    } else {
        span / 25
    };
    let (start, end) = (start - pad, end + pad);
    let width_secs = (end - start).num_seconds().max(1) as f64;
    let plot_right = WIDTH - RIGHT;
    let x = |t: DateTime<Utc>| {
        round(LEFT + (t - start).num_seconds() as f64 / width_secs * (plot_right - LEFT))
    };
    let lane_y = |i: usize| TOP + LANE / 2.0 + i as f64 * LANE;
    let axis_y = TOP + lanes_count as f64 * LANE;

    let per_row = ((WIDTH - LEFT) / LEGEND_COLUMN).floor().max(1.0) as usize;
    let legend_top = axis_y + 48.0;
    let series = shown
        .iter()
        .enumerate()
        .map(|(i, ((service, tag), points))| {
            // Tags that landed together would hide each other: nudge each series a little.
            let dodge = ((i % 5) as f64 - 2.0) * 3.0;
            let dots: Vec<Dot> = points
                .iter()
                .map(|p| Dot {
                    x: x(p.landed),
                    y: lane_y(rank(&p.env).unwrap_or(0)) + dodge,
                    title: format!(
                        "{service} {tag} landed in {} at {}",
                        p.env,
                        p.landed.format("%Y-%m-%d %H:%M UTC")
                    ),
                })
                .collect();
            let lead = match (points.first(), points.last()) {
                (Some(a), Some(b)) if points.len() > 1 => format!(
                    "{} to {} in {}",
                    a.env,
                    b.env,
                    human((b.landed - a.landed).to_std().unwrap_or_default())
                ),
                (Some(a), _) => format!("in {} only", a.env),
                _ => String::new(),
            };
            let legend_x = LEFT + (i % per_row) as f64 * LEGEND_COLUMN;
            let legend_y = legend_top + (i / per_row) as f64 * LEGEND_ROW;
            Series {
                label: format!("{service} {tag}"),
                lead,
                colour: PALETTE[i % PALETTE.len()].to_string(),
                points: dots
                    .iter()
                    .map(|d| format!("{},{}", d.x, d.y))
                    .collect::<Vec<_>>()
                    .join(" "),
                dots,
                legend_x,
                legend_y,
                legend_line_end: legend_x + 22.0,
                legend_text_x: legend_x + 30.0,
                legend_text_y: legend_y + 4.0,
            }
        })
        .collect::<Vec<_>>();
    let legend_rows = series.len().div_ceil(per_row).max(1);

    let desc = if series.is_empty() {
        "No landing times are known: the history of the repository is not available.".to_string()
    } else {
        let lines: Vec<String> = series
            .iter()
            .map(|s| format!("{} ({})", s.label, s.lead))
            .collect();
        format!(
            "When each of the {} most recent tags landed in {}, over time: {}.",
            series.len(),
            data.environments.join(", "),
            lines.join("; ")
        )
    };
    Chart {
        width: WIDTH,
        height: legend_top + legend_rows as f64 * LEGEND_ROW,
        plot_left: LEFT,
        plot_right,
        plot_top: TOP,
        axis_y,
        tick_label_y: axis_y + 20.0,
        lanes: data
            .environments
            .iter()
            .enumerate()
            .map(|(i, name)| Lane {
                name: name.clone(),
                y: lane_y(i),
                label_y: lane_y(i) + 5.0,
            })
            .collect(),
        ticks: ticks(start, end)
            .into_iter()
            .map(|(t, label)| Tick { x: x(t), label })
            .collect(),
        now_x: x(now),
        empty: series.is_empty(),
        series,
        desc,
        left_out,
    }
}

/// Evenly spaced, round instants between `start` and `end` (at most about eight), labelled.
fn ticks(start: DateTime<Utc>, end: DateTime<Utc>) -> Vec<(DateTime<Utc>, String)> {
    let span_hours = (end - start).num_hours();
    let step_hours = STEPS_HOURS
        .into_iter()
        .find(|h| span_hours / h <= 8)
        .unwrap_or(STEPS_HOURS[STEPS_HOURS.len() - 1]);
    let step = step_hours * 3600;
    let format = match step_hours {
        h if h < 24 => "%-d %b %H:%M",
        h if h < 720 => "%-d %b",
        _ => "%b %Y",
    };
    let mut out = Vec::new();
    let mut secs = start.timestamp().div_euclid(step) * step + step;
    while secs < end.timestamp() {
        if let Some(t) = DateTime::from_timestamp(secs, 0) {
            out.push((t, t.format(format).to_string()));
        }
        secs += step;
    }
    out
}
