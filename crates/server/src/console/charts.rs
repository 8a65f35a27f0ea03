//! Charts as SVG text, drawn on the server: a page needs no script to show them, and a test
//! reads their numbers. Every label is escaped; numbers carry thousands separators.

use std::fmt::Write as _;

use stratum_core::{LadderSummary, fmt_num};

/// Escapes text for SVG (XML) content and attributes.
fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn percent(share: f64) -> String {
    format!("{:.1}%", share * 100.0)
}

/// Which pyramid: customers per level, or the value they hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pyramid {
    Customers,
    Value,
}

/// A level pyramid: one centred bar per graded level, best on top, its width the level's
/// share of the customers (or of the value), labelled with the level, the figure and the
/// share. `unit` follows value figures (the policy's currency).
pub fn pyramid(summary: &LadderSummary, kind: Pyramid, unit: &str) -> String {
    let rows: Vec<_> = summary
        .rows
        .iter()
        .filter(|r| r.level != stratum_core::evaluate::NOT_APPLICABLE)
        .collect();
    let (width, bar_height, gap, top) = (420.0, 30.0, 6.0, 34.0);
    let height = top + rows.len() as f64 * (bar_height + gap) + 8.0;
    let title = match kind {
        Pyramid::Customers => "Customers per level".to_string(),
        Pyramid::Value => format!(
            "{} per level{}",
            summary.value_name.as_deref().unwrap_or("value"),
            if unit.is_empty() {
                String::new()
            } else {
                format!(" ({unit})")
            }
        ),
    };
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="pyramid" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}"><title>{}</title><text x="{}" y="20" text-anchor="middle" font-size="14" font-weight="bold">{}</text>"#,
        esc(&format!("{title}: {}", summary.ladder)),
        width / 2.0,
        esc(&title)
    );
    for (i, r) in rows.iter().enumerate() {
        let (figure, share) = match kind {
            Pyramid::Customers => (fmt_num(r.count as f64), r.share),
            Pyramid::Value => (fmt_num(r.value), r.value_share.unwrap_or(0.0)),
        };
        // A sliver stays visible for a level with almost nothing.
        let w = (share.clamp(0.0, 1.0) * (width - 20.0)).max(2.0);
        let y = top + i as f64 * (bar_height + gap);
        let x = (width - w) / 2.0;
        let _ = write!(
            svg,
            r##"<g class="level" data-level="{level}" data-figure="{figure}" data-share="{pct}"><rect x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{bar_height}" fill="#7fa8d6" fill-opacity="{opacity:.2}"/><text x="{cx}" y="{ty:.1}" text-anchor="middle" font-size="12">{level}: {figure} ({pct})</text></g>"##,
            level = esc(&r.level),
            figure = esc(&figure),
            pct = percent(share),
            opacity = 0.45 + 0.5 * (1.0 - i as f64 / rows.len().max(1) as f64),
            cx = width / 2.0,
            ty = y + bar_height / 2.0 + 4.0,
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The Lorenz curve of the value over customers ordered by value, largest first, with the
/// diagonal of an even spread and the top fifth marked.
pub fn lorenz(points: &[(f64, f64)], value_name: &str, pareto_top20: Option<f64>) -> String {
    let (w, h, left, bottom, pad) = (420.0, 300.0, 56.0, 48.0, 16.0);
    let (plot_w, plot_h) = (w - left - pad, h - bottom - pad);
    let px = |x: f64| left + x * plot_w;
    let py = |y: f64| pad + (1.0 - y) * plot_h;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="lorenz" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}"><title>{}</title>"#,
        esc(&format!("Lorenz curve of {value_name}"))
    );
    // Axes with ticks every 20%.
    let _ = write!(
        svg,
        r##"<line x1="{l}" y1="{b}" x2="{r}" y2="{b}" stroke="#333"/><line x1="{l}" y1="{t}" x2="{l}" y2="{b}" stroke="#333"/>"##,
        l = px(0.0),
        r = px(1.0),
        t = py(1.0),
        b = py(0.0)
    );
    for step in 0..=5 {
        let v = step as f64 / 5.0;
        let _ = write!(
            svg,
            r#"<text x="{x:.1}" y="{y:.1}" text-anchor="middle" font-size="11">{p}</text><text x="{lx:.1}" y="{ly:.1}" text-anchor="end" font-size="11">{p}</text>"#,
            x = px(v),
            y = py(0.0) + 16.0,
            lx = px(0.0) - 6.0,
            ly = py(v) + 4.0,
            p = format!("{:.0}%", v * 100.0)
        );
    }
    let _ = write!(
        svg,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="middle" font-size="12">share of customers, largest {v} first</text><text x="14" y="{my:.1}" text-anchor="middle" font-size="12" transform="rotate(-90 14 {my:.1})">share of {v}</text>"#,
        x = px(0.5),
        y = h - 8.0,
        my = py(0.5),
        v = esc(value_name)
    );
    let _ = write!(
        svg,
        r##"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999" stroke-dasharray="4 4"/>"##,
        px(0.0),
        py(0.0),
        px(1.0),
        py(1.0)
    );
    let path: Vec<String> = points
        .iter()
        .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
        .collect();
    let _ = write!(
        svg,
        r##"<polyline fill="none" stroke="#3b6ea5" stroke-width="2" points="{}"/>"##,
        path.join(" ")
    );
    if let Some(top) = pareto_top20 {
        let _ = write!(
            svg,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="#a0001c"/><text class="pareto" x="{tx:.1}" y="{ty:.1}" font-size="12">the top 20% hold {p}</text>"##,
            x = px(0.2),
            y = py(top),
            tx = px(0.2) + 8.0,
            ty = py(top) + 14.0,
            p = percent(top)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use stratum_core::LevelRow;

    fn summary() -> LadderSummary {
        let row = |level: &str, count, share, value, value_share| LevelRow {
            level: level.into(),
            count,
            share,
            value,
            value_share: Some(value_share),
        };
        LadderSummary {
            ladder: "pyramid".into(),
            title: None,
            value_name: Some("profit_12m".into()),
            rows: vec![
                row("key", 20, 0.01, 1_051_861.59, 0.296),
                row("small <b>", 1_006, 0.503, 102_649.68, 0.029),
            ],
            pareto_top20: Some(0.86),
        }
    }

    #[test]
    fn pyramids_carry_the_figures_with_separators_and_escaped_names() {
        let count = pyramid(&summary(), Pyramid::Customers, "CNY");
        assert!(count.contains(">key: 20 (1.0%)</text>"), "{count}");
        assert!(
            count.contains(">small &lt;b&gt;: 1,006 (50.3%)</text>"),
            "{count}"
        );
        let value = pyramid(&summary(), Pyramid::Value, "CNY");
        assert!(
            value.contains(">profit_12m per level (CNY)</text>"),
            "{value}"
        );
        assert!(
            value.contains(">key: 1,051,861.59 (29.6%)</text>"),
            "{value}"
        );
    }

    #[test]
    fn the_lorenz_curve_marks_the_top_fifth() {
        let svg = lorenz(
            &[(0.0, 0.0), (0.2, 0.86), (1.0, 1.0)],
            "profit_12m",
            Some(0.86),
        );
        assert!(svg.contains(">the top 20% hold 86.0%</text>"), "{svg}");
        assert!(svg.contains(">share of profit_12m</text>"), "{svg}");
        assert!(
            svg.contains(r#"points="56.0,252.0 125.6,49.0 404.0,16.0""#),
            "{svg}"
        );
    }
}
