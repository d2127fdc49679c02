//! The dashboard's 30-day chart: an inline SVG of stacked bars (present, on leave, absent) per day, rendered on the
//! server. Each bar carries a `<title>` with its figures (read by screen readers and shown on hover), and the
//! legend names the colours, so the chart does not depend on colour alone.

use chrono::NaiveDate;
use maud::{html, Markup};

/// One day's figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DayFigures {
    pub present: i64,
    pub leave: i64,
    pub absent: i64,
}

const WIDTH: i64 = 600;
const HEIGHT: i64 = 160;
const TOP: i64 = 14;
const BOTTOM: i64 = 20;

/// The chart of `days` (oldest first) for `site`.
pub fn attendance_chart(site: &str, days: &[(NaiveDate, DayFigures)]) -> Markup {
    let max = days.iter().map(|(_, f)| f.present + f.leave + f.absent).max().unwrap_or(0).max(1);
    let n = i64::try_from(days.len()).unwrap_or(1).max(1);
    let slot = WIDTH / n;
    let bar = (slot - 4).max(1);
    let plot = HEIGHT - TOP - BOTTOM;
    let scale = |v: i64| v * plot / max;
    let title_id = format!("chart-title-{site}");
    html! {
        svg.chart data-testid="chart-30d" viewBox=(format!("0 0 {WIDTH} {HEIGHT}")) role="img"
            aria-labelledby=(title_id) xmlns="http://www.w3.org/2000/svg" {
            title id=(title_id) { "Attendance over the last " (days.len()) " days at site " (site) }
            text x="0" y="10" font-size="10" fill="#5b6470" { "max " (max) }
            @for (i, (date, f)) in days.iter().enumerate() {
                @let x = i64::try_from(i).unwrap_or(0) * slot + 2;
                @let (p, l, a) = (scale(f.present), scale(f.leave), scale(f.absent));
                @let base = HEIGHT - BOTTOM;
                g data-date=(date) {
                    title { (date) ": " (f.present) " present, " (f.leave) " on leave, " (f.absent) " absent" }
                    rect.bar-p x=(x) y=(base - p) width=(bar) height=(p) {}
                    rect.bar-l x=(x) y=(base - p - l) width=(bar) height=(l) {}
                    rect.bar-a x=(x) y=(base - p - l - a) width=(bar) height=(a) {}
                }
            }
            @if let (Some((first, _)), Some((last, _))) = (days.first(), days.last()) {
                text x="0" y=(HEIGHT - 4) font-size="10" fill="#5b6470" { (first) }
                text x=(WIDTH) y=(HEIGHT - 4) font-size="10" fill="#5b6470" text-anchor="end" { (last) }
            }
        }
        p.legend aria-hidden="true" {
            span.k-p { "Present" } span.k-l { "On leave" } span.k-a { "Absent" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_busiest_day_and_carry_their_figures() {
        let d1 = NaiveDate::from_ymd_opt(2026, 11, 1).unwrap_or_default();
        let d2 = NaiveDate::from_ymd_opt(2026, 11, 2).unwrap_or_default();
        let svg = attendance_chart(
            "A",
            &[
                (d1, DayFigures { present: 10, leave: 0, absent: 0 }),
                (d2, DayFigures { present: 2, leave: 1, absent: 2 }),
            ],
        )
        .into_string();
        assert!(svg.contains("2026-11-02: 2 present, 1 on leave, 2 absent"), "{svg}");
        // The busiest day fills the plot (160 - 14 - 20 = 126 px); 2 of 10 is 25 px.
        assert!(svg.contains(r#"height="126""#), "{svg}");
        assert!(svg.contains(r#"height="25""#), "{svg}");
        assert!(svg.contains(r#"data-testid="chart-30d""#));
    }
}
