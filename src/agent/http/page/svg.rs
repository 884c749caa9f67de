//! The two charts of the status page, drawn here as inline SVG (no script, no external asset):
//! seconds over time, one dot per point, failed passes in red, a line through the points.
//! Drawn with `maud` like the rest of the page, so the title and labels are escaped.

use super::localtime;
use crate::agent::state::history::Point;
use crate::reconcile::PassOutcome;
use maud::{html, Markup};
use std::time::SystemTime;

// Small user units, so that text keeps a readable size when a phone shrinks the chart (the
// page's style sheet raises the font size on narrow screens; the margins leave room for it).
const W: f64 = 480.0;
const H: f64 = 160.0;
/// Margins: left for the value labels, bottom for the time labels.
const LEFT: f64 = 64.0;
const BOTTOM: f64 = 26.0;
const TOP: f64 = 14.0;
const RIGHT: f64 = 12.0;

/// A round upper bound for the y axis (1, 2 or 5 times a power of ten).
fn nice_max(v: f64) -> f64 {
    if v.is_nan() || v <= 0.0 || v.is_infinite() {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|m| *m >= v)
        .unwrap_or(10.0 * p)
}

fn secs_label(v: f64) -> String {
    if v >= 1.0 {
        format!("{v:.0} s")
    } else {
        format!("{:.0} ms", v * 1000.0)
    }
}

fn unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// An SVG chart of `points` (oldest first) titled `title`; `id` names it for tests and links.
pub(crate) fn chart(id: &str, title: &str, points: &[Point]) -> Markup {
    let (x0, x1) = (LEFT, W - RIGHT);
    let (y0, y1) = (H - BOTTOM, TOP);
    // SVG elements get an explicit end tag: in HTML, `<line>` alone would not close.
    html! {
        svg id=(id) class="chart" viewBox={ "0 0 " (W) " " (H) } role="img" aria-label=(title)
            xmlns="http://www.w3.org/2000/svg" {
            title { (title) }
            line x1=(x0) y1=(y0) x2=(x1) y2=(y0) stroke="#888" {}
            line x1=(x0) y1=(y0) x2=(x0) y2=(y1) stroke="#888" {}
            @if points.is_empty() {
                text x=((x0 + x1) / 2.0) y=((y0 + y1) / 2.0) text-anchor="middle" fill="#666" {
                    "no data yet"
                }
            } @else {
                (plot(points))
            }
        }
    }
}

/// The line, the dots and the axis labels of a chart with at least one point.
fn plot(points: &[Point]) -> Markup {
    let (x0, x1) = (LEFT, W - RIGHT);
    let (y0, y1) = (H - BOTTOM, TOP);
    let max = nice_max(points.iter().map(|p| p.seconds).fold(0.0, f64::max));
    let (t_first, t_last) = (unix(points[0].at), unix(points[points.len() - 1].at));
    let span = (t_last - t_first).max(1e-9);
    let xy = |i: usize, p: &Point| {
        let x = if points.len() == 1 {
            (x0 + x1) / 2.0
        } else if t_last > t_first {
            x0 + (unix(p.at) - t_first) / span * (x1 - x0)
        } else {
            x0 + i as f64 / (points.len() - 1) as f64 * (x1 - x0)
        };
        let y = y0 - (p.seconds / max).clamp(0.0, 1.0) * (y0 - y1);
        (format!("{x:.1}"), format!("{y:.1}"))
    };
    let line: Vec<String> = points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let (x, y) = xy(i, p);
            format!("{x},{y}")
        })
        .collect();
    html! {
        polyline fill="none" stroke="#3b6ea8" stroke-width="1.5" points=(line.join(" ")) {}
        @for (i, p) in points.iter().enumerate() {
            @let (x, y) = xy(i, p);
            @let colour = match p.result {
                PassOutcome::InSync | PassOutcome::Changes => "#3b6ea8",
                PassOutcome::Partial => "#c98a00",
                PassOutcome::Failed => "#c0392b",
            };
            circle cx=(x) cy=(y) r="3.5" fill=(colour) {
                title { (localtime::clock(p.at)) " " (secs_label(p.seconds)) }
            }
        }
        (axis_labels(max, points))
    }
}

fn axis_labels(max: f64, points: &[Point]) -> Markup {
    let (x0, x1, y0, y1) = (LEFT, W - RIGHT, H - BOTTOM, TOP);
    let x = x0 - 6.0;
    let first = localtime::clock(points[0].at);
    let last = localtime::clock(points[points.len() - 1].at);
    let plural = if points.len() == 1 { "" } else { "s" };
    html! {
        text x=(x) y=(y1) text-anchor="end" dominant-baseline="middle" font-size="11"
            fill="#444" { (secs_label(max)) }
        text x=(x) y=(y0) text-anchor="end" dominant-baseline="middle" font-size="11"
            fill="#444" { "0" }
        text x=(x0) y=(H - 5.0) font-size="11" fill="#444" { (first) }
        text x=(x1) y=(H - 5.0) text-anchor="end" font-size="11" fill="#444" {
            (last) " (" (points.len()) " point" (plural) ")"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn pt(secs_after: u64, seconds: f64, result: PassOutcome) -> Point {
        Point {
            at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000 + secs_after),
            seconds,
            result,
        }
    }

    #[test]
    fn axis_maximum_is_round() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(0.33), 0.5);
        assert_eq!(nice_max(1.2), 2.0);
        assert_eq!(nice_max(7.0), 10.0);
        assert_eq!(nice_max(f64::NAN), 1.0);
    }

    #[test]
    fn draws_one_dot_per_point_scaled_to_the_axis() {
        let pts = [
            pt(0, 0.2, PassOutcome::Changes),
            pt(10, 0.4, PassOutcome::Failed),
            pt(20, 0.1, PassOutcome::Changes),
        ];
        let s = chart("c", "Pass <duration>", &pts).into_string();
        assert_eq!(s.matches("<circle").count(), 3);
        assert!(s.contains("#c0392b"), "failed pass in red: {s}");
        assert!(s.contains("Pass &lt;duration&gt;"));
        // Max 0.4 s -> axis 500 ms; 0.4 s sits at 80 % of the plot height (134 - 0.8 * 120).
        assert!(s.contains("500 ms"), "{s}");
        assert!(s.contains(r#"cy="38.0""#), "{s}");
        // First point at the left edge, last at the right.
        assert!(
            s.contains(r#"cx="64.0""#) && s.contains(r#"cx="468.0""#),
            "{s}"
        );
        assert!(s.contains("(3 points)"));
    }

    #[test]
    fn empty_chart_says_so() {
        let s = chart("c", "x", &[]).into_string();
        assert!(s.contains("no data yet") && !s.contains("<circle"));
    }
}
