//! A report as one self-contained HTML page: the table, the scenario's own figures, and
//! charts drawn as inline SVG with plotters (latency percentiles per step, and the
//! scenario's timeline where it has one). No script, no stylesheet or font from elsewhere.

use plotters::prelude::*;
use serde_json::Value;

use crate::report::Report;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// p50, p95 and p99 of every step, as grouped bars.
fn latency_chart(report: &Report) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 320)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let top = report.runs.iter().map(|r| r.p99_ms).fold(1.0_f64, f64::max) * 1.15;
        let steps = report.runs.len().max(1);
        let mut chart = ChartBuilder::on(&root)
            .caption("latency by step (ms): p50, p95, p99", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..steps as f64, 0.0..top)
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = report.runs.iter().map(|r| r.system.clone()).collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(steps)
            .x_label_formatter(&|x| {
                names
                    .get(x.floor() as usize)
                    .filter(|_| (x - x.floor() - 0.5).abs() < 0.01)
                    .cloned()
                    .unwrap_or_default()
            })
            .draw()
            .map_err(|e| e.to_string())?;
        let colors = [
            RGBColor(120, 170, 220),
            RGBColor(60, 120, 190),
            RGBColor(20, 60, 130),
        ];
        for (i, run) in report.runs.iter().enumerate() {
            for (j, value) in [run.p50_ms, run.p95_ms, run.p99_ms].iter().enumerate() {
                let left = i as f64 + 0.15 + j as f64 * 0.23;
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(left, 0.0), (left + 0.2, *value)],
                        colors[j].filled(),
                    )))
                    .map_err(|e| e.to_string())?;
            }
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

fn timeline_chart(title: &str, points: &[(f64, f64)]) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (760, 280)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let right = points.iter().map(|p| p.0).fold(1.0_f64, f64::max);
        let top = points.iter().map(|p| p.1).fold(1.0_f64, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..right, 0.0..top)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("seconds")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(LineSeries::new(points.iter().copied(), &BLUE))
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// The page.
pub fn page(report: &Report) -> String {
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>boxoffice {scenario}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:60em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:right}}th{{background:#eef}}\
         td:first-child,th:first-child{{text-align:left}}</style></head><body>\
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
    charts.push(latency_chart(report));
    for (key, title) in [
        ("holds_per_second", "holds per second"),
        ("sold_per_second", "seats sold per second"),
        ("admission_timeline", "buyers admitted so far"),
    ] {
        if let Some(value) = report.extra.get(key) {
            let points = timeline(value);
            if points.len() > 1 {
                charts.push(timeline_chart(title, &points));
            }
        }
    }
    for chart in charts {
        match chart {
            Ok(svg) => html.push_str(&format!("<div>{svg}</div>")),
            Err(error) => html.push_str(&format!("<p>chart not drawn: {}</p>", escape(&error))),
        }
    }
    html.push_str("<h2>figures</h2><table>");
    for (name, value) in &report.extra {
        let text = value.to_string();
        let shown = if text.len() > 400 {
            format!("{}…", &text[..400])
        } else {
            text
        };
        html.push_str(&format!(
            "<tr><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
            escape(name),
            escape(&shown)
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

    #[test]
    fn the_page_has_the_table_and_its_charts() {
        let mut tally = Tally::new();
        for ms in 1..=50u64 {
            tally.record(Duration::from_millis(ms), "201", true);
        }
        let mut report = Report::new(
            "flash-sale",
            vec![Summary::new(
                "hold",
                4,
                Duration::from_secs(1),
                &tally,
                Some(40.0),
            )],
        );
        report.extra.insert(
            "holds_per_second".into(),
            serde_json::json!({"3": 10, "4": 25, "5": 7}),
        );
        report
            .extra
            .insert("note".into(), serde_json::json!("<b>&"));
        let page = page(&report);
        assert!(page.starts_with("<!doctype html>"));
        assert!(page.contains("<td>hold</td>"), "{page}");
        assert_eq!(
            page.matches("<svg").count(),
            2,
            "latency and timeline charts"
        );
        assert!(page.contains("holds per second"));
        assert!(page.contains("&lt;b&gt;&amp;"), "text is escaped");
        assert!(
            !page.contains("<script") && !page.contains("<link") && !page.contains("src="),
            "nothing fetched from elsewhere"
        );
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
