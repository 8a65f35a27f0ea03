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

/// The charts' words in one language: a prefix and a suffix around a measure's name where
/// the languages put it in different places.
pub struct ChartText {
    pub customers_per_level: &'static str,
    pub per_level: (&'static str, &'static str),
    pub lorenz_of: &'static str,
    pub share_of_customers: (&'static str, &'static str),
    pub share_of: (&'static str, &'static str),
    pub top_hold: &'static str,
    pub moves: &'static str,
    pub now: &'static str,
    pub then: &'static str,
    pub new: &'static str,
    pub centres: &'static str,
}

pub static EN: ChartText = ChartText {
    customers_per_level: "Customers per level",
    per_level: ("", " per level"),
    lorenz_of: "Lorenz curve of ",
    share_of_customers: ("share of customers, largest ", " first"),
    share_of: ("share of ", ""),
    top_hold: "the top 20% hold ",
    moves: "Moves since the previous run",
    now: "now →",
    then: "then ↓",
    new: "new",
    centres: "Cluster centres (members' means; dashed: everyone clustered)",
};

pub static ZH: ChartText = ChartText {
    customers_per_level: "各级客户数",
    per_level: ("各级", ""),
    lorenz_of: "洛伦兹曲线：",
    share_of_customers: ("客户占比（按", "从高到低）"),
    share_of: ("", "占比"),
    top_hold: "前 20% 占 ",
    moves: "相比上次分级的迁移",
    now: "现在 →",
    then: "之前 ↓",
    new: "新客户",
    centres: "各群中心（成员均值；虚线：全体均值）",
};

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
pub fn pyramid(summary: &LadderSummary, kind: Pyramid, unit: &str, w: &ChartText) -> String {
    let rows: Vec<_> = summary
        .rows
        .iter()
        .filter(|r| r.level != stratum_core::evaluate::NOT_APPLICABLE)
        .collect();
    let (width, bar_height, gap, top) = (420.0, 30.0, 6.0, 34.0);
    let height = top + rows.len() as f64 * (bar_height + gap) + 8.0;
    let title = match kind {
        Pyramid::Customers => w.customers_per_level.to_string(),
        Pyramid::Value => format!(
            "{}{}{}{}",
            w.per_level.0,
            summary.value_name.as_deref().unwrap_or("value"),
            w.per_level.1,
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

/// A cluster ladder's centres as small multiples: one panel per feature, one bar per
/// cluster (best level on top) for its members' mean in the feature's own units, and a
/// dashed line at the mean of everyone clustered, so what sets each cluster apart shows.
pub fn centres(clusters: &stratum_core::evaluate::ClusterSummary, w: &ChartText) -> String {
    let (panel, label, bar, gap, top) = (170.0, 110.0, 18.0, 4.0, 52.0);
    let n = clusters.clusters.len();
    let width = label + panel * clusters.features.len() as f64 + 10.0;
    let height = top + n as f64 * (bar + gap) + 8.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="centres" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}"><title>{title}</title><text x="4" y="18" font-size="14" font-weight="bold">{title}</text>"#,
        title = esc(w.centres),
    );
    for (i, c) in clusters.clusters.iter().enumerate() {
        let y = top + i as f64 * (bar + gap);
        let _ = write!(
            svg,
            r#"<text x="4" y="{:.1}" font-size="12">{}</text>"#,
            y + bar / 2.0 + 4.0,
            esc(&c.level)
        );
    }
    for (f, feature) in clusters.features.iter().enumerate() {
        let x0 = label + f as f64 * panel;
        let inner = panel - 16.0;
        let low = clusters
            .clusters
            .iter()
            .map(|c| c.centre[f])
            .fold(0.0_f64, f64::min);
        let high = clusters
            .clusters
            .iter()
            .map(|c| c.centre[f])
            .fold(clusters.mean[f], f64::max);
        let span = if high > low { high - low } else { 1.0 };
        let at = |v: f64| x0 + (v - low) / span * inner;
        let _ = write!(
            svg,
            r#"<g class="feature" data-feature="{name}"><text x="{x0}" y="40" font-size="12" font-weight="bold">{name}</text>"#,
            name = esc(feature)
        );
        for (i, c) in clusters.clusters.iter().enumerate() {
            let y = top + i as f64 * (bar + gap);
            let v = c.centre[f];
            let figure = fmt_num(stratum_core::frame::round4(v));
            let (a, b) = (at(0.0_f64.max(low)), at(v));
            let _ = write!(
                svg,
                r##"<g class="centre" data-level="{level}" data-value="{figure}"><rect x="{x:.1}" y="{y:.1}" width="{bw:.1}" height="{bar}" fill="#7fa8d6"/><text x="{tx:.1}" y="{ty:.1}" font-size="11">{figure}</text></g>"##,
                level = esc(&c.level),
                x = a.min(b),
                bw = (b - a).abs().max(1.5),
                tx = a.min(b) + 3.0,
                ty = y + bar / 2.0 + 4.0,
            );
        }
        let m = at(clusters.mean[f]);
        let _ = write!(
            svg,
            r##"<line class="mean" data-value="{}" x1="{m:.1}" x2="{m:.1}" y1="{:.1}" y2="{:.1}" stroke="#333" stroke-dasharray="3 2"/></g>"##,
            fmt_num(stratum_core::frame::round4(clusters.mean[f])),
            top - 4.0,
            height - 4.0
        );
    }
    svg.push_str("</svg>");
    svg
}

/// The Lorenz curve of the value over customers ordered by value, largest first, with the
/// diagonal of an even spread and the top fifth marked.
pub fn lorenz(
    points: &[(f64, f64)],
    value_name: &str,
    pareto_top20: Option<f64>,
    words: &ChartText,
) -> String {
    let (w, h, left, bottom, pad) = (420.0, 300.0, 56.0, 48.0, 16.0);
    let (plot_w, plot_h) = (w - left - pad, h - bottom - pad);
    let px = |x: f64| left + x * plot_w;
    let py = |y: f64| pad + (1.0 - y) * plot_h;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="lorenz" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}"><title>{}</title>"#,
        esc(&format!("{}{value_name}", words.lorenz_of))
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
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="middle" font-size="12">{a}{v}{b}</text><text x="14" y="{my:.1}" text-anchor="middle" font-size="12" transform="rotate(-90 14 {my:.1})">{c}{v}{d}</text>"#,
        x = px(0.5),
        y = h - 8.0,
        my = py(0.5),
        v = esc(value_name),
        a = words.share_of_customers.0,
        b = words.share_of_customers.1,
        c = words.share_of.0,
        d = words.share_of.1
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
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="4" fill="#a0001c"/><text class="pareto" x="{tx:.1}" y="{ty:.1}" font-size="12">{hold}{p}</text>"##,
            hold = words.top_hold,
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

/// The migration matrix as a heat map: a row per level at the previous run (and "new"), a
/// column per level now, each cell the customers who went from one to the other (darker:
/// more) with the value they hold now.
pub fn heatmap(
    moves: &[(Option<String>, String, u64, f64)],
    levels: &[String],
    words: &ChartText,
) -> String {
    let mut rows: Vec<Option<&str>> = levels.iter().map(|l| Some(l.as_str())).collect();
    if moves.iter().any(|(from, ..)| from.is_none()) {
        rows.push(None);
    }
    let cols: Vec<&str> = levels.iter().map(String::as_str).collect();
    // Wide enough for the longest row label (about 7 px a character at 12 px).
    let longest = rows
        .iter()
        .map(|r| r.unwrap_or(words.new).chars().count())
        .max()
        .unwrap_or(0);
    let (cell_w, cell_h, top) = (104.0, 40.0, 44.0);
    let left = (longest as f64 * 7.5 + 16.0).max(96.0);
    let (w, h) = (
        left + cols.len() as f64 * cell_w + 8.0,
        top + rows.len() as f64 * cell_h + 8.0,
    );
    let max = moves.iter().map(|m| m.2).max().unwrap_or(1).max(1) as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" class="heatmap" role="img" viewBox="0 0 {w} {h}" width="{w}" height="{h}"><title>{}</title><text x="{}" y="14" text-anchor="middle" font-size="12">{}</text><text x="8" y="{}" font-size="12">{}</text>"#,
        words.moves,
        left + cols.len() as f64 * cell_w / 2.0,
        words.now,
        top - 8.0,
        words.then
    );
    for (c, col) in cols.iter().enumerate() {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="34" text-anchor="middle" font-size="12" font-weight="bold">{}</text>"#,
            left + (c as f64 + 0.5) * cell_w,
            esc(col)
        );
    }
    for (r, row) in rows.iter().enumerate() {
        let y = top + r as f64 * cell_h;
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" font-size="12" font-weight="bold">{}</text>"#,
            left - 8.0,
            y + cell_h / 2.0 + 4.0,
            esc(row.unwrap_or(words.new))
        );
        for (c, col) in cols.iter().enumerate() {
            let found = moves
                .iter()
                .find(|(from, to, ..)| from.as_deref() == *row && to == col);
            let (n, value) = found.map_or((0, 0.0), |m| (m.2, m.3));
            let x = left + c as f64 * cell_w;
            let _ = write!(
                svg,
                r##"<g class="cell" data-from="{from}" data-to="{to}" data-customers="{n}"><rect x="{x:.1}" y="{y:.1}" width="{cw:.1}" height="{ch:.1}" fill="#7fa8d6" fill-opacity="{o:.2}" stroke="#fff"/><text x="{tx:.1}" y="{ty:.1}" text-anchor="middle" font-size="12">{count}</text><text x="{tx:.1}" y="{vy:.1}" text-anchor="middle" font-size="9">{v}</text></g>"##,
                from = esc(row.unwrap_or(words.new)),
                to = esc(col),
                cw = cell_w - 2.0,
                ch = cell_h - 2.0,
                o = if n == 0 {
                    0.05
                } else {
                    0.15 + 0.75 * (n as f64 / max)
                },
                tx = x + cell_w / 2.0,
                ty = y + 17.0,
                vy = y + 31.0,
                count = fmt_num(n as f64),
                // A matrix without values (a what-if's) shows counts only.
                v = if n == 0 || value == 0.0 {
                    String::new()
                } else {
                    fmt_num(value)
                },
            );
        }
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
            clusters: None,
        }
    }

    #[test]
    fn charts_speak_chinese() {
        let count = pyramid(&summary(), Pyramid::Customers, "CNY", &ZH);
        assert!(count.contains(">各级客户数</text>"), "{count}");
        let value = pyramid(&summary(), Pyramid::Value, "CNY", &ZH);
        assert!(value.contains(">各级profit_12m (CNY)</text>"), "{value}");
        let svg = lorenz(
            &[(0.0, 0.0), (0.2, 0.86), (1.0, 1.0)],
            "利润",
            Some(0.86),
            &ZH,
        );
        assert!(svg.contains(">前 20% 占 86.0%</text>"), "{svg}");
        assert!(svg.contains(">利润占比</text>"), "{svg}");
    }

    #[test]
    fn pyramids_carry_the_figures_with_separators_and_escaped_names() {
        let count = pyramid(&summary(), Pyramid::Customers, "CNY", &EN);
        assert!(count.contains(">key: 20 (1.0%)</text>"), "{count}");
        assert!(
            count.contains(">small &lt;b&gt;: 1,006 (50.3%)</text>"),
            "{count}"
        );
        let value = pyramid(&summary(), Pyramid::Value, "CNY", &EN);
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
    fn cluster_centres_are_drawn_per_feature_against_the_mean() {
        use stratum_core::evaluate::{ClusterCentre, ClusterSummary};
        let clusters = ClusterSummary {
            features: vec!["days_since_last".into(), "revenue_12m".into()],
            mean: vec![207.5, 7831.0],
            sd: vec![200.0, 9000.0],
            inertia: 748.8,
            iterations: 10,
            imputed: 0,
            choices: Vec::new(),
            clusters: vec![
                ClusterCentre {
                    level: "champions".into(),
                    customers: 687,
                    centre: vec![60.73, 18200.0],
                    value_mean: 45940.0,
                    moved: None,
                },
                ClusterCentre {
                    level: "lost <b>".into(),
                    customers: 121,
                    centre: vec![809.0, 0.0],
                    value_mean: 5368.0,
                    moved: Some(0.2),
                },
            ],
        };
        let svg = centres(&clusters, &EN);
        assert_eq!(svg.matches(r#"<g class="feature""#).count(), 2);
        assert_eq!(svg.matches(r#"<g class="centre""#).count(), 4);
        assert!(
            svg.contains(r#"<g class="centre" data-level="champions" data-value="18,200">"#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"data-level="lost &lt;b&gt;" data-value="809""#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"<line class="mean" data-value="7,831""#),
            "{svg}"
        );
        assert!(
            svg.contains(">Cluster centres (members' means; dashed: everyone clustered)</text>")
        );
    }

    #[test]
    fn the_heat_map_has_a_cell_per_move_with_new_customers_last() {
        let levels = vec!["key".to_string(), "small".to_string()];
        let moves = vec![
            (Some("key".to_string()), "key".to_string(), 20, 1_000.5),
            (Some("small".to_string()), "key".to_string(), 3, 40.0),
            (None, "small".to_string(), 1_200, 99.0),
        ];
        let svg = heatmap(&moves, &levels, &EN);
        assert!(
            svg.contains(r#"data-from="small" data-to="key" data-customers="3""#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"data-from="new" data-to="small" data-customers="1200""#),
            "{svg}"
        );
        assert!(
            svg.contains(">1,200</text>") && svg.contains(">1,000.50</text>"),
            "{svg}"
        );
        assert!(svg.contains(r#"data-from="key" data-to="small" data-customers="0""#));
    }

    #[test]
    fn the_lorenz_curve_marks_the_top_fifth() {
        let svg = lorenz(
            &[(0.0, 0.0), (0.2, 0.86), (1.0, 1.0)],
            "profit_12m",
            Some(0.86),
            &EN,
        );
        assert!(svg.contains(">the top 20% hold 86.0%</text>"), "{svg}");
        assert!(svg.contains(">share of profit_12m</text>"), "{svg}");
        assert!(
            svg.contains(r#"points="56.0,252.0 125.6,49.0 404.0,16.0""#),
            "{svg}"
        );
    }
}
