//! A small SVG line chart, written without any dependency: axes, ticks,
//! labels, one polyline per series and a legend. Enough for `syncpipe bench
//! --plot` to draw MB/s against a swept setting.
//!
//! The x axis is categorical: the x values are labels placed at even
//! distances in the order given (a sweep of 64 KiB, 256 KiB, 1 MiB chunks
//! is then spaced like a log scale, which is how such sweeps are read).
//! The y axis is linear from 0 to a rounded-up maximum.

use std::fmt::Write as _;

/// Size of the plot area, in SVG user units.
const PLOT_W: f64 = 460.0;
const HEIGHT: f64 = 420.0;
/// Margins around the plot area: room for tick labels, axis titles and
/// the legend on the right (wider for long series names, see `right`).
const LEFT: f64 = 70.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
/// Rough width of one character at the legend's 12-unit font.
const CHAR_W: f64 = 7.0;
/// Colours of the series, repeated when there are more.
const COLOURS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// One line of the chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The legend's text.
    pub name: String,
    /// One y value per x label (`None`: no point there, e.g. a failed row);
    /// shorter than the labels leaves the rest empty.
    pub values: Vec<Option<f64>>,
}

/// A line chart over categorical x values.
///
/// ```
/// use syncpipe::plot::{LineChart, Series};
///
/// let chart = LineChart {
///     title: "zstd:3".into(),
///     x_label: "chunk size".into(),
///     y_label: "MB/s".into(),
///     x_values: vec!["64 KiB".into(), "1 MiB".into()],
///     series: vec![Series { name: "2 tokens".into(), values: vec![Some(80.0), Some(120.0)] }],
/// };
/// let svg = chart.to_svg();
/// assert!(svg.starts_with("<svg") && svg.contains("<polyline"));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineChart {
    /// Title above the plot.
    pub title: String,
    /// Title of the x axis.
    pub x_label: String,
    /// Title of the y axis.
    pub y_label: String,
    /// The x categories, left to right.
    pub x_values: Vec<String>,
    /// The lines.
    pub series: Vec<Series>,
}

impl LineChart {
    /// The chart as a standalone SVG document.
    pub fn to_svg(&self) -> String {
        let plot_w = PLOT_W;
        let longest = self
            .series
            .iter()
            .map(|s| s.name.chars().count())
            .max()
            .unwrap_or(0);
        let right = RIGHT.max(50.0 + CHAR_W * longest as f64);
        let width = LEFT + plot_w + right;
        let plot_h = HEIGHT - TOP - BOTTOM;
        let max = self
            .series
            .iter()
            .flat_map(|s| s.values.iter().flatten())
            .copied()
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        let ticks = y_ticks(max);
        let top = ticks.last().copied().unwrap_or(1.0);
        let x_at = |i: usize| x_position(i, self.x_values.len(), plot_w) + LEFT;
        let y_at = |v: f64| TOP + plot_h - (v / top).clamp(0.0, 1.0) * plot_h;

        let mut s = String::new();
        // `write!` into a String cannot fail.
        let _ = writeln!(
            s,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{HEIGHT}" viewBox="0 0 {width} {HEIGHT}" font-family="sans-serif" font-size="12">"#
        );
        let _ = writeln!(
            s,
            r#"<rect x="0" y="0" width="{width}" height="{HEIGHT}" fill="white"/>"#
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="22" text-anchor="middle" font-size="15">{}</text>"#,
            LEFT + plot_w / 2.0,
            escape(&self.title)
        );
        // Grid lines and y ticks.
        for &t in &ticks {
            let y = y_at(t);
            let _ = writeln!(
                s,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/>"##,
                LEFT + plot_w
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                LEFT - 6.0,
                y + 4.0,
                number(t)
            );
        }
        // Axes.
        let _ = writeln!(
            s,
            r#"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="black"/>"#,
            TOP + plot_h
        );
        let _ = writeln!(
            s,
            r#"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/>"#,
            TOP + plot_h,
            LEFT + plot_w,
            TOP + plot_h
        );
        // X ticks.
        for (i, label) in self.x_values.iter().enumerate() {
            let x = x_at(i);
            let _ = writeln!(
                s,
                r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="black"/>"#,
                TOP + plot_h,
                TOP + plot_h + 5.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                TOP + plot_h + 19.0,
                escape(label)
            );
        }
        // Axis titles.
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            LEFT + plot_w / 2.0,
            HEIGHT - 14.0,
            escape(&self.x_label)
        );
        let _ = writeln!(
            s,
            r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">{}</text>"#,
            TOP + plot_h / 2.0,
            TOP + plot_h / 2.0,
            escape(&self.y_label)
        );
        // Series: a polyline through the points that exist, a dot on each
        // (a series of one point is then still visible), a legend entry.
        for (k, series) in self.series.iter().enumerate() {
            let colour = COLOURS[k % COLOURS.len()];
            let points: Vec<(f64, f64)> = series
                .values
                .iter()
                .take(self.x_values.len())
                .enumerate()
                .filter_map(|(i, v)| v.filter(|v| v.is_finite()).map(|v| (x_at(i), y_at(v))))
                .collect();
            let path: Vec<String> = points
                .iter()
                .map(|(x, y)| format!("{x:.1},{y:.1}"))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="2" points="{}"/>"#,
                path.join(" ")
            );
            for (x, y) in &points {
                let _ = writeln!(
                    s,
                    r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{colour}"/>"#
                );
            }
            let ly = TOP + 10.0 + k as f64 * 18.0;
            let lx = LEFT + plot_w + 16.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{colour}" stroke-width="2"/>"#,
                lx + 20.0
            );
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
                lx + 26.0,
                ly + 4.0,
                escape(&series.name)
            );
        }
        s.push_str("</svg>\n");
        s
    }
}

/// Where the `i`-th of `n` categories sits in a plot `width` wide: evenly
/// spread with half a step of margin at both ends (one category: the middle).
fn x_position(i: usize, n: usize, width: f64) -> f64 {
    let step = width / n.max(1) as f64;
    step * (i as f64 + 0.5)
}

/// Ticks from 0 to at least `max`, 4 to 10 of them, at steps of 1, 2 or 5
/// times a power of ten.
fn y_ticks(max: f64) -> Vec<f64> {
    if max <= 0.0 || !max.is_finite() {
        return vec![0.0, 1.0];
    }
    let rough = max / 5.0;
    let power = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|&s| s >= rough)
        .unwrap_or(10.0 * power);
    let count = (max / step).ceil() as usize;
    (0..=count).map(|i| i as f64 * step).collect()
}

/// A tick label: no decimals for whole numbers.
fn number(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').to_string()
    }
}

/// Escapes text for SVG element content and attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart() -> LineChart {
        LineChart {
            title: "a <title> & more".into(),
            x_label: "chunk size".into(),
            y_label: "MB/s".into(),
            x_values: vec!["64 KiB".into(), "256 KiB".into(), "1 MiB".into()],
            series: vec![
                Series {
                    name: "1".into(),
                    values: vec![Some(10.0), Some(20.0), Some(40.0)],
                },
                Series {
                    name: "2".into(),
                    values: vec![Some(15.0), None, Some(75.0)],
                },
            ],
        }
    }

    /// Opening and closing tags balance (self-closing ones count as both).
    fn balanced(svg: &str) -> bool {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let Some(end) = rest[start..].find('>') else {
                return false;
            };
            let tag = &rest[start + 1..start + end];
            rest = &rest[start + end + 1..];
            if tag.ends_with('/') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                if stack.pop().as_deref() != Some(name) {
                    return false;
                }
            } else {
                let name = tag.split_whitespace().next().unwrap_or("");
                stack.push(name.to_string());
            }
        }
        stack.is_empty()
    }

    /// The numbers of a polyline's `points` attribute.
    fn polylines(svg: &str) -> Vec<Vec<(f64, f64)>> {
        svg.lines()
            .filter(|l| l.starts_with("<polyline"))
            .map(|l| {
                let at = l.find("points=\"").map_or(l.len(), |i| i + 8);
                let end = l[at..].find('"').map_or(l.len(), |e| at + e);
                l[at..end]
                    .split_whitespace()
                    .filter_map(|p| {
                        let (x, y) = p.split_once(',')?;
                        Some((x.parse().ok()?, y.parse().ok()?))
                    })
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_well_formed_document_with_one_line_per_series() {
        let svg = chart().to_svg();
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(balanced(&svg), "{svg}");
        assert!(svg.contains("a &lt;title&gt; &amp; more"));
        let lines = polylines(&svg);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), 3);
        // The missing value leaves its point out.
        assert_eq!(lines[1].len(), 2);
        for label in ["64 KiB", "256 KiB", "1 MiB", "chunk size", "MB/s"] {
            assert!(svg.contains(&format!(">{label}</text>")), "{label}");
        }
    }

    #[test]
    fn values_scale_linearly_from_the_x_axis() {
        let svg = chart().to_svg();
        let lines = polylines(&svg);
        let (base, height) = (TOP + (HEIGHT - TOP - BOTTOM), HEIGHT - TOP - BOTTOM);
        // Max 75 gives ticks up to 80: 40 sits at half the height, 20 at a quarter.
        let y = |v: f64| base - v / 80.0 * height;
        for (got, want) in lines[0].iter().zip([10.0, 20.0, 40.0]) {
            assert!((got.1 - y(want)).abs() < 0.11, "{got:?} vs {want}");
        }
        // Evenly spaced x, left to right.
        let xs: Vec<f64> = lines[0].iter().map(|p| p.0).collect();
        assert!((xs[1] - xs[0] - (xs[2] - xs[1])).abs() < 0.11);
        assert!(xs[0] > LEFT && xs[2] < LEFT + PLOT_W);
        // Every point is inside the plot area.
        for p in lines.iter().flatten() {
            assert!(p.1 >= TOP - 0.01 && p.1 <= base + 0.01);
        }
    }

    #[test]
    fn ticks_are_round_and_cover_the_maximum() {
        assert_eq!(y_ticks(75.0), vec![0.0, 20.0, 40.0, 60.0, 80.0]);
        assert_eq!(y_ticks(0.0), vec![0.0, 1.0]);
        let t = y_ticks(1234.0);
        assert!(*t.last().unwrap_or(&0.0) >= 1234.0);
        assert!((4..=11).contains(&t.len()), "{t:?}");
        assert_eq!(number(2.5), "2.5");
        assert_eq!(number(200.0), "200");
    }

    #[test]
    fn one_point_and_no_series_still_draw() {
        let c = LineChart {
            x_values: vec!["only".into()],
            series: vec![Series {
                name: "s".into(),
                values: vec![Some(3.0)],
            }],
            ..LineChart::default()
        };
        let svg = c.to_svg();
        assert!(balanced(&svg));
        assert_eq!(polylines(&svg)[0].len(), 1);
        assert!(balanced(&LineChart::default().to_svg()));
    }
}
