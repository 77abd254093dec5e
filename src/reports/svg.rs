//! Charts as SVG markup drawn on the server: the page embeds them inline, the browser
//! needs no script. Shapes use presentation attributes and classes (the CSP allows no
//! `style` attribute); every label is escaped; each chart has a `<title>` and `<desc>`
//! for screen readers, each bar or point a `<title>` with its value.

use std::fmt::Write;

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 240.0;
/// Room for the axis labels: left, right, top, bottom.
const PAD: (f64, f64, f64, f64) = (44.0, 12.0, 14.0, 34.0);

/// Text for SVG (XML) content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn open(out: &mut String, id: &str, title: &str, desc: &str, width: f64, height: f64) {
    let (id, title, desc) = (escape(id), escape(title), escape(desc));
    let _ = write!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="chart" id="{id}" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-labelledby="{id}-title {id}-desc"><title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>"#
    );
}

/// A round axis maximum at or above `max` (1, 2 or 5 times a power of ten).
fn nice_max(max: i64) -> i64 {
    let max = max.max(1);
    let mut step = 1;
    loop {
        for m in [1, 2, 5] {
            if m * step >= max {
                return m * step;
            }
        }
        step *= 10;
    }
}

/// Horizontal grid lines with their values at 0, ½ and the top.
fn grid(out: &mut String, top: i64, plot: (f64, f64, f64, f64)) {
    let (x0, y0, x1, y1) = plot;
    for (value, y) in [(0, y1), (top / 2, (y0 + y1) / 2.0), (top, y0)] {
        let _ = write!(
            out,
            r#"<line class="grid" x1="{x0}" y1="{y}" x2="{x1}" y2="{y}"/><text class="axis" x="{}" y="{}" text-anchor="end">{value}</text>"#,
            x0 - 6.0,
            y + 4.0
        );
    }
}

fn plot_area() -> (f64, f64, f64, f64) {
    (PAD.0, PAD.2, WIDTH - PAD.1, HEIGHT - PAD.3)
}

/// Which labels to print under `n` slots so they do not overlap (every k-th).
fn label_every(n: usize, slot: f64) -> usize {
    ((42.0 / slot).ceil() as usize).clamp(1, n.max(1))
}

/// Vertical bars, one per label.
pub fn bars(id: &str, title: &str, labels: &[String], values: &[i64]) -> String {
    let mut out = String::new();
    let total: i64 = values.iter().sum();
    open(
        &mut out,
        id,
        title,
        &format!("{} bars, {total} in all", values.len()),
        WIDTH,
        HEIGHT,
    );
    let (x0, y0, x1, y1) = plot_area();
    let top = nice_max(values.iter().copied().max().unwrap_or(0));
    grid(&mut out, top, (x0, y0, x1, y1));
    let slot = (x1 - x0) / values.len().max(1) as f64;
    let every = label_every(values.len(), slot);
    for (i, (label, &value)) in labels.iter().zip(values).enumerate() {
        let h = (y1 - y0) * value as f64 / top as f64;
        let x = x0 + slot * i as f64 + slot * 0.12;
        let w = slot * 0.76;
        let label = escape(label);
        let _ = write!(
            out,
            r#"<rect class="bar" x="{x:.1}" y="{:.1}" width="{w:.1}" height="{h:.1}"><title>{label}: {value}</title></rect>"#,
            y1 - h
        );
        if i % every == 0 {
            let _ = write!(
                out,
                r#"<text class="axis" x="{:.1}" y="{}" text-anchor="middle">{label}</text>"#,
                x + w / 2.0,
                y1 + 16.0
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// Lines over the days of a period, one per series `(name, class, values)`.
pub fn lines(id: &str, title: &str, days: &[String], series: &[(&str, &str, Vec<i64>)]) -> String {
    let mut out = String::new();
    let desc = series
        .iter()
        .map(|(name, _, values)| format!("{name}: {} in all", values.iter().sum::<i64>()))
        .collect::<Vec<_>>()
        .join("; ");
    open(&mut out, id, title, &desc, WIDTH, HEIGHT);
    let (x0, y0, x1, y1) = plot_area();
    let max = series
        .iter()
        .flat_map(|(_, _, v)| v.iter().copied())
        .max()
        .unwrap_or(0);
    let top = nice_max(max);
    grid(&mut out, top, (x0, y0, x1, y1));
    let n = days.len();
    let step = if n > 1 {
        (x1 - x0) / (n - 1) as f64
    } else {
        0.0
    };
    let x = |i: usize| {
        if n > 1 {
            x0 + step * i as f64
        } else {
            (x0 + x1) / 2.0
        }
    };
    let y = |v: i64| y1 - (y1 - y0) * v as f64 / top as f64;
    let every = label_every(n, step.max(1.0) * 1.6);
    for (i, day) in days.iter().enumerate() {
        if i % every == 0 {
            // `2023-01-31` reads as `01-31` under the axis.
            let short = escape(day.get(5..).unwrap_or(day));
            let _ = write!(
                out,
                r#"<text class="axis" x="{:.1}" y="{}" text-anchor="middle">{short}</text>"#,
                x(i),
                y1 + 16.0
            );
        }
    }
    for (k, (name, class, values)) in series.iter().enumerate() {
        let (name, class) = (escape(name), escape(class));
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| format!("{:.1},{:.1}", x(i), y(v)))
            .collect();
        let _ = write!(
            out,
            r#"<polyline class="line {class}" fill="none" points="{}"/>"#,
            points.join(" ")
        );
        for (i, &v) in values.iter().enumerate() {
            let day = escape(days.get(i).map_or("", String::as_str));
            let _ = write!(
                out,
                r#"<circle class="point {class}" cx="{:.1}" cy="{:.1}" r="3"><title>{day}: {v} {name}</title></circle>"#,
                x(i),
                y(v)
            );
        }
        // The legend, top right.
        let lx = x1 - 110.0 * (series.len() - k) as f64;
        let _ = write!(
            out,
            r#"<rect class="key {class}" x="{lx}" y="2" width="10" height="10"/><text class="axis" x="{}" y="11">{name}</text>"#,
            lx + 14.0
        );
    }
    out.push_str("</svg>");
    out
}

/// A grid of cells shaded by value: rows (weekdays) × columns (hours).
pub fn heatmap(
    id: &str,
    title: &str,
    rows: &[&str],
    columns: &[String],
    values: &[Vec<i64>],
) -> String {
    let mut out = String::new();
    let max = values.iter().flatten().copied().max().unwrap_or(0);
    let total: i64 = values.iter().flatten().sum();
    let cell = 26.0;
    let (left, top) = (44.0, 8.0);
    let width = left + cell * columns.len() as f64 + 8.0;
    let height = top + cell * rows.len() as f64 + 24.0;
    open(
        &mut out,
        id,
        title,
        &format!(
            "{} rows by {} columns, {total} in all, at most {max} in one cell",
            rows.len(),
            columns.len()
        ),
        width,
        height,
    );
    for (r, row) in rows.iter().enumerate() {
        let row = escape(row);
        let y = top + cell * r as f64;
        let _ = write!(
            out,
            r#"<text class="axis" x="{}" y="{}" text-anchor="end">{row}</text>"#,
            left - 6.0,
            y + cell / 2.0 + 4.0
        );
        for (c, column) in columns.iter().enumerate() {
            let value = values.get(r).and_then(|v| v.get(c)).copied().unwrap_or(0);
            // Empty cells stay faint; the busiest is full colour.
            let opacity = if max == 0 {
                0.0
            } else {
                0.08 + 0.92 * value as f64 / max as f64
            };
            let _ = write!(
                out,
                r#"<rect class="cell" x="{}" y="{y}" width="{}" height="{}" fill-opacity="{opacity:.2}"><title>{row} {}: {value}</title></rect>"#,
                left + cell * c as f64,
                cell - 2.0,
                cell - 2.0,
                escape(column)
            );
        }
    }
    for (c, column) in columns.iter().enumerate() {
        if c % 3 == 0 {
            let _ = write!(
                out,
                r#"<text class="axis" x="{}" y="{}" text-anchor="middle">{}</text>"#,
                left + cell * c as f64 + cell / 2.0 - 1.0,
                top + cell * rows.len() as f64 + 16.0,
                escape(column)
            );
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped() {
        let chart = bars(
            "c",
            "Backlog <by> age",
            &["<script>alert(1)</script>".into(), "a&b \"q\"".into()],
            &[3, 0],
        );
        assert!(!chart.contains("<script>"), "{chart}");
        assert!(chart.contains("&lt;script&gt;alert(1)&lt;/script&gt;: 3"));
        assert!(chart.contains("a&amp;b &quot;q&quot;: 0"));
        assert!(chart.contains("<title id=\"c-title\">Backlog &lt;by&gt; age</title>"));
        assert!(chart.starts_with("<svg") && chart.ends_with("</svg>"));
    }

    #[test]
    fn bars_scale_to_a_round_maximum() {
        assert_eq!(nice_max(0), 1);
        assert_eq!(nice_max(7), 10);
        assert_eq!(nice_max(11), 20);
        assert_eq!(nice_max(4999), 5000);
        let chart = bars("c", "t", &["a".into(), "b".into()], &[10, 5]);
        // The plot is 192 high; 10 of 10 fills it, 5 half of it.
        assert!(chart.contains("height=\"192.0\""), "{chart}");
        assert!(chart.contains("height=\"96.0\""), "{chart}");
    }

    #[test]
    fn lines_and_heatmap_have_one_shape_per_value() {
        let days: Vec<String> = (1..=3).map(|d| format!("2023-01-0{d}")).collect();
        let chart = lines(
            "d",
            "Per day",
            &days,
            &[("created", "created", vec![1, 2, 3])],
        );
        assert_eq!(chart.matches("<circle").count(), 3);
        assert!(chart.contains("2023-01-03: 3 created"));
        let hours: Vec<String> = (0..24).map(|h| format!("{h:02}")).collect();
        let map = heatmap(
            "h",
            "Hours",
            &["Mon", "Tue"],
            &hours,
            &[vec![1; 24], vec![0; 24]],
        );
        assert_eq!(map.matches("<rect class=\"cell\"").count(), 48);
    }
}
