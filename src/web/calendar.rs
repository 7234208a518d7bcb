//! The closure calendar: the school year (August to July) as a server-drawn SVG picture, one
//! row per scope × audience that has a closure, a bar per closure, so a supervisor sees at a
//! glance when grades are closed for whom. No script; every label is text in the picture.

use chrono::{DateTime, Datelike, Duration, Utc};
use chrono_tz::Europe::Amsterdam;

use crate::storage::closures::Closure;

const WIDTH: i64 = 760;
const LABEL: i64 = 170;
const ROW: i64 = 26;
const TOP: i64 = 30;

const MONTHS: [&str; 12] = [
    "aug", "sep", "okt", "nov", "dec", "jan", "feb", "mrt", "apr", "mei", "jun", "jul",
];

fn audience_nl(audience: &str) -> &'static str {
    match audience {
        "parents" => "ouders",
        "students" => "leerlingen",
        "partners" => "partners",
        _ => "?",
    }
}

/// Dark enough for white-on-colour contrast; one per scope.
fn colour(scope: &str) -> &'static str {
    match scope {
        "cijfers" => "#a4161a",
        "huiswerk" => "#0b5cad",
        "rooster" => "#2e6b30",
        _ => "#5b3a8c",
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The SVG for the school year starting at `year_start` (1 August, Dutch time).
pub fn closure_calendar(
    closures: &[Closure],
    year_start: DateTime<Utc>,
    now: DateTime<Utc>,
) -> String {
    let year_end = year_start + Duration::days(365);
    let span = (year_end - year_start).num_seconds().max(1);
    let x = |at: i64| -> i64 {
        let offset = (at - year_start.timestamp()).clamp(0, span);
        LABEL + offset * (WIDTH - LABEL - 10) / span
    };
    // Rows: every scope × audience with a closure touching this year, in a stable order.
    let mut rows: Vec<(String, String)> = Vec::new();
    for c in closures {
        if c.ends_at <= year_start.timestamp() || c.starts_at >= year_end.timestamp() {
            continue;
        }
        for audience in c.audiences.split(' ').filter(|a| !a.is_empty()) {
            let row = (c.scope.clone(), audience.to_string());
            if !rows.contains(&row) {
                rows.push(row);
            }
        }
    }
    rows.sort();
    let height = TOP + (rows.len().max(1) as i64) * ROW + 10;
    let mut svg = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {height}" width="100%" role="img" aria-labelledby="cal-title cal-desc" class="calendar"><title id="cal-title">Kalender van afgesloten gegevens, schooljaar {}–{}</title><desc id="cal-desc">{}</desc>"#,
        year_start.with_timezone(&Amsterdam).year(),
        year_start.with_timezone(&Amsterdam).year() + 1,
        if rows.is_empty() {
            "Dit schooljaar is niets afgesloten.".to_string()
        } else {
            format!("{} rijen, per soort gegevens en voor wie.", rows.len())
        }
    );
    // Month grid.
    let local_start = year_start.with_timezone(&Amsterdam);
    for (i, name) in MONTHS.iter().enumerate() {
        let month_start = local_start
            .checked_add_months(chrono::Months::new(i as u32))
            .map(|d| d.with_timezone(&Utc).timestamp())
            .unwrap_or(year_start.timestamp());
        let mx = x(month_start);
        svg.push_str(&format!(
            r##"<line x1="{mx}" y1="{}" x2="{mx}" y2="{height}" stroke="#c9d1da" stroke-width="1"/><text x="{}" y="18" font-size="12" fill="#1d2733">{name}</text>"##,
            TOP - 6,
            mx + 4
        ));
    }
    if rows.is_empty() {
        svg.push_str(&format!(
            r##"<text x="{LABEL}" y="{}" font-size="13" fill="#5b6775">Geen afsluitingen dit schooljaar.</text>"##,
            TOP + 17
        ));
    }
    for (i, (scope, audience)) in rows.iter().enumerate() {
        let y = TOP + i as i64 * ROW;
        svg.push_str(&format!(
            r##"<text x="4" y="{}" font-size="13" fill="#1d2733">{} · {}</text>"##,
            y + 17,
            escape(scope),
            audience_nl(audience)
        ));
        for c in closures
            .iter()
            .filter(|c| &c.scope == scope && c.audiences.split(' ').any(|a| a == audience))
        {
            let (x1, x2) = (x(c.starts_at), x(c.ends_at));
            if x2 <= LABEL && x1 <= LABEL {
                continue;
            }
            let w = (x2 - x1).max(3);
            svg.push_str(&format!(
                r#"<rect x="{x1}" y="{}" width="{w}" height="{}" rx="3" fill="{}"><title>{} dicht voor {}: {} tot {} ({})</title></rect>"#,
                y + 4,
                ROW - 8,
                colour(scope),
                escape(scope),
                audience_nl(audience),
                super::dutch_time::format_ts(c.starts_at),
                super::dutch_time::format_ts(c.ends_at),
                escape(&c.reason)
            ));
        }
    }
    // Today.
    if now > year_start && now < year_end {
        let nx = x(now.timestamp());
        svg.push_str(&format!(
            r##"<line x1="{nx}" y1="{}" x2="{nx}" y2="{height}" stroke="#1d2733" stroke-width="2" stroke-dasharray="4 3"/><text x="{}" y="{}" font-size="11" fill="#1d2733">vandaag</text>"##,
            TOP - 4,
            nx + 3,
            height - 2
        ));
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::dutch_time::parse_input;

    fn closure(scope: &str, audiences: &str, from: &str, to: &str, reason: &str) -> Closure {
        Closure {
            id: "c".into(),
            school_brin: "12AB".into(),
            scope: scope.into(),
            audiences: audiences.into(),
            starts_at: parse_input(from).unwrap().timestamp(),
            ends_at: parse_input(to).unwrap().timestamp(),
            reason: reason.into(),
            created_by: "t".into(),
            created_at: 0,
        }
    }

    #[test]
    fn one_row_per_scope_and_audience_with_escaped_reasons() {
        let start = parse_input("2026-08-01T00:00").unwrap();
        let now = parse_input("2026-12-01T12:00").unwrap();
        let closures = [
            closure(
                "cijfers",
                "parents partners",
                "2026-12-07T00:00",
                "2026-12-18T18:00",
                "toetsweek <1>",
            ),
            closure(
                "huiswerk",
                "students",
                "2027-03-01T00:00",
                "2027-03-05T00:00",
                "vakantie",
            ),
            // Last school year: not drawn.
            closure(
                "rooster",
                "parents",
                "2025-12-01T00:00",
                "2025-12-05T00:00",
                "oud",
            ),
        ];
        let svg = closure_calendar(&closures, start, now);
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<rect").count(), 3, "{svg}");
        assert!(svg.contains("cijfers · ouders"));
        assert!(svg.contains("cijfers · partners"));
        assert!(svg.contains("huiswerk · leerlingen"));
        assert!(!svg.contains("rooster ·"));
        assert!(svg.contains("toetsweek &lt;1&gt;"));
        assert!(svg.contains("vandaag"));
        assert!(!svg.contains("<script"));
    }

    #[test]
    fn an_empty_year_says_so() {
        let start = parse_input("2026-08-01T00:00").unwrap();
        let svg = closure_calendar(&[], start, start);
        assert!(svg.contains("Geen afsluitingen"));
    }
}
