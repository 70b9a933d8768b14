//! A report as one self-contained HTML page: the table; a labelled latency chart per step
//! (p50, p95, p99 of boxoffice and the seed design on the same axes, a log scale where the
//! spread needs it); the timelines with both systems; the scenario's own figures as
//! tables. Charts are inline SVG drawn with plotters. No script, no stylesheet or font from
//! elsewhere.

use plotters::prelude::*;
use serde_json::Value;

use crate::report::{Report, Summary};

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The step a run measured and the system it ran on: the seed design's runs are named
/// `seed <step>` in a scenario with steps, or `seed-design` in one without (whose one
/// step is the whole operation: no name).
fn step_and_system(name: &str) -> (String, &'static str) {
    match name.strip_prefix("seed ") {
        Some(step) => (step.to_owned(), "seed design"),
        None if name == "seed-design" => (String::new(), "seed design"),
        None if name == "boxoffice" => (String::new(), "boxoffice"),
        None => (name.to_owned(), "boxoffice"),
    }
}

/// The steps of a report, each with its runs (boxoffice first), in the report's order.
fn steps(report: &Report) -> Vec<(String, Vec<(&'static str, &Summary)>)> {
    let mut steps: Vec<(String, Vec<(&'static str, &Summary)>)> = Vec::new();
    for run in &report.runs {
        let (step, system) = step_and_system(&run.system);
        match steps.iter_mut().find(|(s, _)| *s == step) {
            Some((_, runs)) => runs.push((system, run)),
            None => steps.push((step, vec![(system, run)])),
        }
    }
    for (_, runs) in &mut steps {
        runs.sort_by_key(|(system, _)| *system != "boxoffice");
    }
    steps
}

const PERCENTILES: [(&str, RGBColor); 3] = [
    ("p50", RGBColor(120, 170, 220)),
    ("p95", RGBColor(60, 120, 190)),
    ("p99", RGBColor(20, 60, 130)),
];

/// One step's p50, p95 and p99 for each system, as labelled bars; a log scale when the
/// values spread over more than a factor of 50.
fn step_chart(step: &str, runs: &[(&'static str, &Summary)]) -> Result<String, String> {
    let values: Vec<[f64; 3]> = runs
        .iter()
        .map(|(_, r)| [r.p50_ms, r.p95_ms, r.p99_ms].map(|v| v.max(0.01)))
        .collect();
    let top = values.iter().flatten().copied().fold(0.01_f64, f64::max);
    let low = values.iter().flatten().copied().fold(f64::MAX, f64::min);
    let log = top / low > 50.0;
    let caption = format!(
        "{step}: latency (ms{})",
        if log { ", log scale" } else { "" }
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let names: Vec<&str> = runs.iter().map(|(system, _)| *system).collect();
        let width = runs.len().max(1) as f64;
        let label = |x: &f64| {
            names
                .get(x.floor() as usize)
                .filter(|_| (x - x.floor() - 0.5).abs() < 0.01)
                .map(|n| (*n).to_owned())
                .unwrap_or_default()
        };
        // Bars, each with its value above it, and a legend of the percentiles.
        macro_rules! draw {
            ($chart:expr, $bottom:expr) => {{
                let mut chart = $chart;
                chart
                    .configure_mesh()
                    .disable_x_mesh()
                    .x_labels(runs.len() * 2 + 1)
                    .x_label_formatter(&label)
                    .y_desc("ms")
                    .draw()
                    .map_err(|e| e.to_string())?;
                for (i, v) in values.iter().enumerate() {
                    for (j, (name, color)) in PERCENTILES.iter().enumerate() {
                        let left = i as f64 + 0.12 + j as f64 * 0.26;
                        let bars = chart
                            .draw_series(std::iter::once(Rectangle::new(
                                [(left, $bottom), (left + 0.24, v[j])],
                                color.filled(),
                            )))
                            .map_err(|e| e.to_string())?;
                        if i == 0 {
                            bars.label(*name).legend(move |(x, y)| {
                                Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled())
                            });
                        }
                        chart
                            .draw_series(std::iter::once(
                                // Above the bar: a few pixels up from its top.
                                EmptyElement::at((left, v[j]))
                                    + Text::new(
                                        format!("{:.1}", v[j]),
                                        (0, -13),
                                        ("sans-serif", 11),
                                    ),
                            ))
                            .map_err(|e| e.to_string())?;
                    }
                }
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperLeft)
                    .background_style(WHITE.mix(0.8))
                    .border_style(BLACK)
                    .draw()
                    .map_err(|e| e.to_string())?;
            }};
        }
        if log {
            let chart = ChartBuilder::on(&root)
                .caption(caption.as_str(), ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(32)
                .y_label_area_size(64)
                .build_cartesian_2d(0.0..width, (low * 0.5..top * 3.0).log_scale())
                .map_err(|e| e.to_string())?;
            draw!(chart, low * 0.5);
        } else {
            let chart = ChartBuilder::on(&root)
                .caption(caption.as_str(), ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(32)
                .y_label_area_size(64)
                .build_cartesian_2d(0.0..width, 0.0..top * 1.2)
                .map_err(|e| e.to_string())?;
            draw!(chart, 0.0);
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// A timeline the scenario recorded: `{second: count}` (holds per second) or `[[seconds,
/// total], …]` (admitted so far).
fn timeline(value: &Value) -> Vec<(f64, f64)> {
    match value {
        Value::Object(map) => {
            let mut points: Vec<(f64, f64)> = map
                .iter()
                .filter_map(|(k, v)| Some((k.parse().ok()?, v.as_f64()?)))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            points
        }
        Value::Array(items) => items
            .iter()
            .filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64()?)))
            .collect(),
        _ => Vec::new(),
    }
}

/// Lines over time, one per system, with a legend.
fn timeline_chart(title: &str, lines: &[(&str, Vec<(f64, f64)>)]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 280)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let all = || lines.iter().flat_map(|(_, points)| points.iter());
        let right = all().map(|p| p.0).fold(1.0_f64, f64::max);
        let top = all().map(|p| p.1).fold(1.0_f64, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..right, 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("seconds from the start")
            .draw()
            .map_err(|e| e.to_string())?;
        let colors = [RGBColor(20, 60, 130), RGBColor(200, 90, 30)];
        for ((name, points), color) in lines.iter().zip(colors.into_iter().cycle()) {
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(|e| e.to_string())?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Whether `value` is a timeline (`{second: count}` or `[[seconds, value], …]`).
fn is_timeline(value: &Value) -> bool {
    match value {
        Value::Object(map) => !map.is_empty() && map.keys().all(|k| k.parse::<f64>().is_ok()),
        Value::Array(items) => {
            items.len() > 1
                && items
                    .iter()
                    .all(|p| p.as_array().is_some_and(|p| p.len() == 2))
        }
        _ => false,
    }
}

/// A figure as a person reads it: a number, a list, or a table of its fields (nested ones
/// as tables in their cell); timelines are charted, not listed.
fn figure(value: &Value, depth: usize) -> String {
    match value {
        Value::Null => "–".to_owned(),
        Value::Bool(b) => if *b { "yes" } else { "no" }.to_owned(),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => i.to_string(),
            (None, Some(f)) if f.abs() >= 100.0 => format!("{f:.0}"),
            (None, Some(f)) => format!("{f:.2}"),
            _ => n.to_string(),
        },
        Value::String(text) => escape(text),
        _ if is_timeline(value) => "(a timeline: charted above)".to_owned(),
        Value::Array(items) if items.iter().all(|v| !v.is_object() && !v.is_array()) => items
            .iter()
            .map(|v| figure(v, depth))
            .collect::<Vec<_>>()
            .join(", "),
        Value::Object(fields) if depth < 3 => {
            let mut table = String::from("<table>");
            for (name, value) in fields {
                table.push_str(&format!(
                    "<tr><th>{}</th><td>{}</td></tr>",
                    escape(name),
                    figure(value, depth + 1)
                ));
            }
            table.push_str("</table>");
            table
        }
        other => {
            let text = other.to_string();
            let shown: String = text.chars().take(300).collect();
            escape(&shown) + if text.len() > shown.len() { "…" } else { "" }
        }
    }
}

/// The page.
pub fn page(report: &Report) -> String {
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>boxoffice {scenario}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}th{{background:#eef}}\
         td:first-child,th:first-child{{text-align:left}}td table{{margin:0}}\
         table.figures th,td table th{{text-align:left;vertical-align:top;background:#f6f6fb}}\
         table.figures td{{text-align:left}}</style></head><body>\
         <h1>boxoffice load test: {scenario}</h1><p>{machine}</p>",
        scenario = escape(&report.scenario),
        machine = escape(&report.machine)
    );
    html.push_str(
        "<table><tr><th>step / system</th><th>clients</th><th>attempts</th><th>successes</th>\
         <th>success/s</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th>\
         <th>server MiB</th><th>outcomes</th></tr>",
    );
    for r in &report.runs {
        let outcomes: Vec<String> = r.outcomes.iter().map(|(k, v)| format!("{k}={v}")).collect();
        html.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td><td>{:.2}</td>\
             <td>{:.2}</td><td>{:.2}</td><td>{:.2}</td><td>{}</td><td>{}</td></tr>",
            escape(&r.system),
            r.clients,
            r.attempts,
            r.successes,
            r.successes_per_second,
            r.p50_ms,
            r.p95_ms,
            r.p99_ms,
            r.max_ms,
            r.server_peak_rss_mib
                .map_or("-".into(), |m| format!("{m:.0}")),
            escape(&outcomes.join(" "))
        ));
    }
    html.push_str("</table>");
    if let Some(ratio) = report.throughput_ratio {
        html.push_str(&format!(
            "<p><b>boxoffice / seed design: {ratio:.1}× successful operations per second</b></p>"
        ));
    }
    let mut charts = Vec::new();
    for (step, runs) in steps(report) {
        let step = if step.is_empty() {
            report.scenario.clone()
        } else {
            step
        };
        charts.push(step_chart(&step, &runs));
    }
    for (key, title) in [
        ("holds_per_second", "holds per second"),
        ("sold_per_second", "seats sold per second"),
        ("admitted_per_second", "buyers admitted per second"),
        ("admission_timeline", "buyers admitted so far"),
    ] {
        let mut lines = Vec::new();
        if let Some(value) = report.extra.get(key) {
            lines.push(("boxoffice", timeline(value)));
        }
        if let Some(value) = report.extra.get("seed_design").and_then(|s| s.get(key)) {
            lines.push(("seed design", timeline(value)));
        }
        lines.retain(|(_, points)| points.len() > 1);
        if !lines.is_empty() {
            charts.push(timeline_chart(title, &lines));
        }
    }
    for chart in charts {
        match chart {
            Ok(svg) => html.push_str(&format!("<div>{svg}</div>")),
            Err(error) => html.push_str(&format!("<p>chart not drawn: {}</p>", escape(&error))),
        }
    }
    html.push_str("<h2>figures</h2><table class=\"figures\">");
    for (name, value) in report.extra.iter().filter(|(_, v)| !is_timeline(v)) {
        html.push_str(&format!(
            "<tr><th>{}</th><td>{}</td></tr>",
            escape(&name.replace('_', " ")),
            figure(value, 0)
        ));
    }
    html.push_str("</table></body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{Summary, Tally};
    use std::time::Duration;

    fn summary(name: &str, ms: std::ops::RangeInclusive<u64>) -> Summary {
        let mut tally = Tally::new();
        for ms in ms {
            tally.record(Duration::from_millis(ms), "201", true);
        }
        Summary::new(name, 4, Duration::from_secs(1), &tally, Some(40.0))
    }

    #[test]
    fn each_step_gets_a_labelled_chart_with_both_systems_and_the_figures_are_tables() {
        let mut report = Report::new(
            "flash-sale",
            vec![
                summary("hold", 1..=50),
                summary("checkout", 20..=40),
                summary("seed hold", 400..=9_000),
            ],
        );
        report.extra.insert(
            "holds_per_second".into(),
            serde_json::json!({"3": 10, "4": 25, "5": 7}),
        );
        report.extra.insert(
            "seed_design".into(),
            serde_json::json!({"holds_per_second": {"3": 2, "4": 3}, "seconds": 35.5}),
        );
        report
            .extra
            .insert("note".into(), serde_json::json!("<b>&"));
        let page = page(&report);
        assert!(page.starts_with("<!doctype html>"));
        assert!(page.contains("<td>hold</td>"), "{page}");
        assert_eq!(
            page.matches("<svg").count(),
            3,
            "a chart per step (hold, checkout) and the timeline"
        );
        assert!(
            page.contains("hold: latency (ms, log scale)"),
            "1 ms to 9 s"
        );
        assert!(
            page.contains("checkout: latency (ms)"),
            "20 to 40 ms: linear"
        );
        assert!(page.contains(">\nseed design\n<") && page.contains(">\nboxoffice\n<"));
        assert!(page.contains(">\np99\n<"), "a legend of the percentiles");
        assert_eq!(
            page.matches(">\np99\n<").count(),
            2,
            "one legend entry per chart, not per bar"
        );
        assert!(page.contains("holds per second"));
        assert!(
            page.contains("<th>seconds</th><td>35.50</td>"),
            "nested figures are a table: {page}"
        );
        assert!(
            !page.contains("&quot;3&quot;"),
            "timelines are not listed raw"
        );
        assert!(page.contains("&lt;b&gt;&amp;"), "text is escaped");
        assert!(
            !page.contains("<script") && !page.contains("<link") && !page.contains("src="),
            "nothing fetched from elsewhere"
        );
    }

    #[test]
    fn runs_are_grouped_into_steps_boxoffice_first() {
        let report = Report::new(
            "hot",
            vec![summary("seed-design", 1..=3), summary("boxoffice", 1..=2)],
        );
        let grouped = steps(&report);
        assert_eq!(grouped.len(), 1);
        let systems: Vec<&str> = grouped[0].1.iter().map(|(s, _)| *s).collect();
        assert_eq!(systems, vec!["boxoffice", "seed design"]);
    }

    #[test]
    fn timelines_come_as_maps_or_pairs() {
        let map = serde_json::json!({"10": 3, "2": 1});
        assert_eq!(timeline(&map), vec![(2.0, 1.0), (10.0, 3.0)]);
        let pairs = serde_json::json!([[0.5, 0], [1.5, 2000]]);
        assert_eq!(timeline(&pairs), vec![(0.5, 0.0), (1.5, 2000.0)]);
        assert!(timeline(&serde_json::json!(7)).is_empty());
    }
}
