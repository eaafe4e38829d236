//! Pictures drawn on the server as SVG: the report–observable graph and the timeline.
//!
//! Both layouts are deterministic (same campaign, same picture) and need no script: reports
//! sit on a ring in the order received; an observable carried by several reports sits at
//! the barycentre of its reports, pulled inwards, so that what ties the campaign is in the
//! middle; an observable carried by one report sits in a small sunflower just outside that
//! report. A fixed number of relaxation rounds then pushes overlapping nodes apart. Beyond
//! [`MAX_OBSERVABLES`] observables the graph keeps the most widely carried ones and draws a
//! "+N more" node, so that hundreds of values stay legible.
//!
//! Styling hooks: every node carries classes (`report`, `obs`, `shared`, `suppressed`,
//! `overcorrelating`, `unconfirmed`, `k-net`, ...) for the stylesheet; colours are also
//! given as presentation attributes so that the SVG reads on its own (exports, e-mail).

use std::collections::BTreeMap;
use std::f64::consts::PI;
use std::fmt::Write;

use chrono::{DateTime, Duration, Utc};

use super::i18n::Text as _;
use crate::model::{Language, ObservableKind, Tlp};

/// Observables drawn at most; the rest are summarised in one node.
pub const MAX_OBSERVABLES: usize = 150;
/// Shared observables labelled at most (the most widely carried first).
const MAX_LABELS: usize = 24;
const W: f64 = 1000.0;
const H: f64 = 620.0;
const GOLDEN: f64 = 2.399_963_229_728_653; // π(3 − √5)

/// What the correlation engine says about a value (drawn as a mark; the engine does not
/// expose it yet, so every value is `Plain` for now).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ValueMark {
    #[default]
    Plain,
    /// On a warning list: never links.
    Suppressed,
    /// Seen in too many reports: never links.
    OverCorrelating,
}

/// A report node.
#[derive(Debug, Clone)]
pub struct GraphReport {
    pub id: String,
    pub title: String,
    pub tlp: Tlp,
    pub unconfirmed: bool,
}

/// An observable node and the reports (indices) that carry it.
#[derive(Debug, Clone)]
pub struct GraphObservable {
    pub kind: ObservableKind,
    pub value: String,
    pub reports: Vec<usize>,
    pub mark: ValueMark,
}

/// TLP 2.0 colours: the label colour, shown on black.
pub fn tlp_colour(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Red => "#FF2B2B",
        Tlp::Amber | Tlp::AmberStrict => "#FFC000",
        Tlp::Green => "#33FF00",
        Tlp::Clear => "#FFFFFF",
    }
}

/// The CSS class of a TLP badge (`tlp-amber-strict`).
pub fn tlp_class(tlp: Tlp) -> &'static str {
    match tlp {
        Tlp::Red => "tlp-red",
        Tlp::AmberStrict => "tlp-amber-strict",
        Tlp::Amber => "tlp-amber",
        Tlp::Green => "tlp-green",
        Tlp::Clear => "tlp-clear",
    }
}

/// The family of an observable kind: (class, colour).
pub fn kind_family(kind: ObservableKind) -> (&'static str, &'static str) {
    use ObservableKind::*;
    match kind {
        Ipv4 | Ipv6 | Cidr | Asn => ("k-net", "#2563eb"),
        Domain | Url | Email => ("k-name", "#0d9488"),
        Md5 | Sha1 | Sha256 | Ssdeep | Filename => ("k-file", "#7c3aed"),
        Cve | AttackTechnique | MalwareFamily => ("k-intel", "#c2410c"),
    }
}

/// XML-escapes text for content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if (c as u32) < 0x20 && c != '\n' && c != '\t' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let head: String = s.chars().take(max.saturating_sub(1)).collect();
    format!("{head}…")
}

#[derive(Debug, Clone, Copy)]
struct P {
    x: f64,
    y: f64,
}

/// The report–observable graph.
pub fn graph(reports: &[GraphReport], observables: &[GraphObservable], lang: Language) -> String {
    // The most widely carried observables first; ties by value for a stable picture.
    let mut order: Vec<usize> = (0..observables.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (&observables[a], &observables[b]);
        b.reports
            .len()
            .cmp(&a.reports.len())
            .then_with(|| a.value.cmp(&b.value))
    });
    let hidden = order.len().saturating_sub(MAX_OBSERVABLES);
    order.truncate(MAX_OBSERVABLES);
    let shown: Vec<&GraphObservable> = order.iter().map(|&i| &observables[i]).collect();

    let c = P {
        x: W / 2.0,
        y: H / 2.0,
    };
    let n = reports.len();
    let (rx, ry) = (W * 0.31, H * 0.33);
    let rpos: Vec<P> = (0..n)
        .map(|i| {
            if n == 1 {
                return c;
            }
            let a = PI + 2.0 * PI * i as f64 / n as f64;
            P {
                x: c.x + rx * a.cos(),
                y: c.y + ry * a.sin(),
            }
        })
        .collect();

    // Initial positions: shared values at their (inward-pulled) barycentre, spread in a
    // sunflower per report set; single-report values in a sunflower outside their report.
    let mut pos: Vec<P> = Vec::with_capacity(shown.len());
    let mut per_group: BTreeMap<Vec<usize>, usize> = BTreeMap::new();
    for o in &shown {
        let reps: Vec<usize> = o.reports.iter().copied().filter(|&r| r < n).collect();
        let slot = per_group.entry(reps.clone()).or_default();
        let k = *slot as f64;
        *slot += 1;
        let p = if reps.len() >= 2 {
            let bx = reps.iter().map(|&r| rpos[r].x).sum::<f64>() / reps.len() as f64;
            let by = reps.iter().map(|&r| rpos[r].y).sum::<f64>() / reps.len() as f64;
            let base = P {
                x: c.x + (bx - c.x) * 0.55,
                y: c.y + (by - c.y) * 0.55,
            };
            let r = 16.0 * k.sqrt();
            P {
                x: base.x + r * (k * GOLDEN).cos(),
                y: base.y + r * (k * GOLDEN).sin(),
            }
        } else if let Some(&r) = reps.first() {
            let rp = rpos[r];
            let (dx, dy) = if n == 1 {
                (0.0, 0.0)
            } else {
                let (dx, dy) = (rp.x - c.x, rp.y - c.y);
                let len = (dx * dx + dy * dy).sqrt().max(1.0);
                (dx / len, dy / len)
            };
            let start = if n == 1 { 60.0 } else { 0.0 };
            let anchor = P {
                x: rp.x + dx * 58.0,
                y: rp.y + dy * 58.0,
            };
            let r = start + 11.0 * (k + 1.0).sqrt();
            P {
                x: anchor.x + r * ((k + 1.0) * GOLDEN).cos(),
                y: anchor.y + r * ((k + 1.0) * GOLDEN).sin(),
            }
        } else {
            c
        };
        pos.push(p);
    }
    let radius: Vec<f64> = shown.iter().map(|o| node_radius(o.reports.len())).collect();
    relax(&mut pos, &radius, &rpos);

    let mut s = String::with_capacity(64 * 1024);
    let _ = write!(
        s,
        r##"<svg class="graph" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" role="img" aria-labelledby="graph-title" font-family="inherit">"##
    );
    let _ = write!(
        s,
        r#"<title id="graph-title">{}</title>"#,
        esc(lang.t("graph"))
    );
    // Edges first, under the nodes.
    s.push_str(r#"<g class="edges">"#);
    for (o, p) in shown.iter().zip(&pos) {
        let shared = o.reports.len() >= 2;
        for &r in o.reports.iter().filter(|&&r| r < n) {
            let rp = rpos[r];
            let _ = write!(
                s,
                r#"<line class="edge{}" x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="{}"/>"#,
                if shared { " shared" } else { "" },
                rp.x,
                rp.y,
                p.x,
                p.y,
                if shared { "#64748b" } else { "#cbd5e1" },
                if shared { "1.4" } else { "0.8" }
            );
        }
    }
    s.push_str("</g>");

    // Observables.
    let mut labelled = 0;
    s.push_str(r#"<g class="observables">"#);
    for ((o, p), r) in shown.iter().zip(&pos).zip(&radius) {
        let shared = o.reports.len() >= 2;
        let (family, colour) = kind_family(o.kind);
        let mark = match o.mark {
            ValueMark::Plain => "",
            ValueMark::Suppressed => " suppressed",
            ValueMark::OverCorrelating => " overcorrelating",
        };
        let (fill, stroke, dash) = match o.mark {
            ValueMark::Plain => (colour, "#ffffff", ""),
            ValueMark::Suppressed => ("#e2e8f0", "#94a3b8", r#" stroke-dasharray="2 2""#),
            ValueMark::OverCorrelating => ("#fff7ed", "#ea580c", r#" stroke-dasharray="3 2""#),
        };
        let _ = write!(
            s,
            r#"<g class="obs {family}{}{mark}"><title>{} {} — {} {}</title><circle cx="{:.1}" cy="{:.1}" r="{r:.1}" fill="{fill}" stroke="{stroke}" stroke-width="1.5"{dash}/>"#,
            if shared { " shared" } else { "" },
            esc(o.kind.as_str()),
            esc(&o.value),
            o.reports.len(),
            esc(lang.t("reports")),
            p.x,
            p.y,
        );
        if shared && labelled < MAX_LABELS {
            labelled += 1;
            let anchor = if p.x > c.x { "start" } else { "end" };
            let dx = if p.x > c.x { r + 4.0 } else { -(r + 4.0) };
            let _ = write!(
                s,
                r##"<text class="label" x="{:.1}" y="{:.1}" text-anchor="{anchor}" font-size="11" fill="#0f172a" stroke="#ffffff" stroke-width="3" paint-order="stroke">{}</text>"##,
                p.x + dx,
                p.y + 4.0,
                esc(&shorten(&o.value, 30))
            );
        }
        s.push_str("</g>");
    }
    s.push_str("</g>");

    // Reports on top.
    s.push_str(r#"<g class="reports">"#);
    for (rep, p) in reports.iter().zip(&rpos) {
        let colour = tlp_colour(rep.tlp);
        let _ = write!(
            s,
            r##"<a href="#{}"><g class="report {}{}"><title>{} · {} · {}</title><rect x="{:.1}" y="{:.1}" width="22" height="22" rx="4" fill="#0f172a" stroke="{colour}" stroke-width="3"/>"##,
            esc(&rep.id),
            tlp_class(rep.tlp),
            if rep.unconfirmed { " unconfirmed" } else { "" },
            esc(&rep.id),
            esc(rep.tlp.label()),
            esc(&rep.title),
            p.x - 11.0,
            p.y - 11.0,
        );
        if rep.unconfirmed {
            let _ = write!(
                s,
                r##"<rect class="unconfirmed-ring" x="{:.1}" y="{:.1}" width="30" height="30" rx="7" fill="none" stroke="#64748b" stroke-width="1.2" stroke-dasharray="3 3"/>"##,
                p.x - 15.0,
                p.y - 15.0
            );
        }
        let below = p.y >= c.y || n == 1;
        let _ = write!(
            s,
            r##"<text class="report-label" x="{:.1}" y="{:.1}" text-anchor="middle" font-size="12" font-weight="600" fill="#0f172a" stroke="#ffffff" stroke-width="3" paint-order="stroke">{}</text></g></a>"##,
            p.x,
            if below { p.y + 30.0 } else { p.y - 21.0 },
            esc(&rep.id)
        );
    }
    s.push_str("</g>");

    if hidden > 0 {
        let more = match lang {
            Language::En => format!("+{hidden} more"),
            Language::Ja => format!("ほか {hidden} 件"),
        };
        let _ = write!(
            s,
            r##"<g class="more"><circle cx="{:.1}" cy="{:.1}" r="26" fill="#f1f5f9" stroke="#94a3b8" stroke-dasharray="4 3"/><text x="{:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="#334155">{}</text></g>"##,
            W - 40.0,
            H - 40.0,
            W - 40.0,
            H - 36.0,
            esc(&more)
        );
    }
    s.push_str("</svg>");
    s
}

fn node_radius(carried_by: usize) -> f64 {
    if carried_by >= 2 {
        6.0 + (carried_by.min(8) as f64) * 1.2
    } else {
        4.0
    }
}

/// Pushes overlapping observable nodes apart (and off the report nodes) in a fixed number
/// of rounds; keeps everything on the canvas.
fn relax(pos: &mut [P], radius: &[f64], reports: &[P]) {
    const ROUNDS: usize = 60;
    const GAP: f64 = 3.0;
    let margin = 14.0;
    for _ in 0..ROUNDS {
        let mut moved = false;
        for i in 0..pos.len() {
            for j in (i + 1)..pos.len() {
                let (dx, dy) = (pos[j].x - pos[i].x, pos[j].y - pos[i].y);
                let d2 = dx * dx + dy * dy;
                let min = radius[i] + radius[j] + GAP;
                if d2 < min * min {
                    let d = d2.sqrt();
                    // Coincident nodes separate along a direction fixed by their indices.
                    let (ux, uy) = if d < 1e-6 {
                        let a = (i * 7 + j * 13) as f64;
                        (a.cos(), a.sin())
                    } else {
                        (dx / d, dy / d)
                    };
                    let push = (min - d) / 2.0;
                    pos[i].x -= ux * push;
                    pos[i].y -= uy * push;
                    pos[j].x += ux * push;
                    pos[j].y += uy * push;
                    moved = true;
                }
            }
            for r in reports {
                let (dx, dy) = (pos[i].x - r.x, pos[i].y - r.y);
                let d = (dx * dx + dy * dy).sqrt();
                let min = radius[i] + 20.0;
                if d < min {
                    let (ux, uy) = if d < 1e-6 {
                        (1.0, 0.0)
                    } else {
                        (dx / d, dy / d)
                    };
                    pos[i].x += ux * (min - d);
                    pos[i].y += uy * (min - d);
                    moved = true;
                }
            }
            pos[i].x = pos[i].x.clamp(margin, W - margin);
            pos[i].y = pos[i].y.clamp(margin, H - margin);
        }
        if !moved {
            break;
        }
    }
}

/// One mark on the timeline.
#[derive(Debug, Clone)]
pub struct TimelineItem {
    pub id: String,
    pub title: String,
    /// The lane: an anonymised source label ("Council member", a feed, or — for the
    /// secretariat — a member).
    pub lane: String,
    pub at: DateTime<Utc>,
    pub tlp: Tlp,
    pub unconfirmed: bool,
}

/// Reports over time, one lane per source label.
pub fn timeline(items: &[TimelineItem], lang: Language) -> String {
    const LEFT: f64 = 190.0;
    const RIGHT: f64 = 30.0;
    const TOP: f64 = 16.0;
    const LANE: f64 = 40.0;
    const AXIS: f64 = 34.0;
    let mut lanes: Vec<&str> = Vec::new();
    for it in items {
        if !lanes.contains(&it.lane.as_str()) {
            lanes.push(&it.lane);
        }
    }
    let height = TOP + LANE * lanes.len().max(1) as f64 + AXIS;
    let (mut t0, mut t1) = match (
        items.iter().map(|i| i.at).min(),
        items.iter().map(|i| i.at).max(),
    ) {
        (Some(a), Some(b)) => (a, b),
        _ => (Utc::now(), Utc::now()),
    };
    if t1 - t0 < Duration::hours(2) {
        t0 -= Duration::hours(1);
        t1 += Duration::hours(1);
    }
    let span = (t1 - t0).num_seconds() as f64;
    t0 -= Duration::seconds((span * 0.04) as i64);
    t1 += Duration::seconds((span * 0.04) as i64);
    let span = (t1 - t0).num_seconds().max(1) as f64;
    let x_of =
        |t: DateTime<Utc>| LEFT + (W - LEFT - RIGHT) * ((t - t0).num_seconds() as f64 / span);

    let mut s = String::with_capacity(8 * 1024);
    let _ = write!(
        s,
        r##"<svg class="timeline" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height:.0}" role="img" aria-labelledby="timeline-title" font-family="inherit"><title id="timeline-title">{}</title>"##,
        esc(lang.t("timeline"))
    );
    // Lanes.
    for (i, lane) in lanes.iter().enumerate() {
        let y = TOP + LANE * i as f64 + LANE / 2.0;
        if i % 2 == 0 {
            let _ = write!(
                s,
                r##"<rect class="lane" x="0" y="{:.1}" width="{W}" height="{LANE}" fill="#f8fafc"/>"##,
                y - LANE / 2.0
            );
        }
        let _ = write!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e2e8f0"/><text class="lane-label" x="{:.1}" y="{:.1}" text-anchor="end" font-size="12" fill="#334155">{}</text>"##,
            W - RIGHT,
            LEFT - 12.0,
            y + 4.0,
            esc(&shorten(lane, 24))
        );
    }
    // Axis and ticks.
    let axis_y = TOP + LANE * lanes.len().max(1) as f64;
    let _ = write!(
        s,
        r##"<line class="axis" x1="{LEFT}" y1="{axis_y:.1}" x2="{:.1}" y2="{axis_y:.1}" stroke="#94a3b8"/>"##,
        W - RIGHT
    );
    let (step, fmt) = tick_step(t1 - t0);
    let mut t = floor_to(t0, step);
    while t <= t1 {
        if t >= t0 {
            let x = x_of(t);
            let _ = write!(
                s,
                r##"<line x1="{x:.1}" y1="{TOP}" x2="{x:.1}" y2="{:.1}" stroke="#e2e8f0" stroke-dasharray="2 4"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle" font-size="11" fill="#64748b">{}</text>"##,
                axis_y + 4.0,
                axis_y + 20.0,
                t.format(fmt)
            );
        }
        t += step;
    }
    // Marks; marks that would overlap in a lane are stacked a little.
    let mut last_x: Vec<(f64, usize)> = vec![(f64::NEG_INFINITY, 0); lanes.len()];
    for it in items {
        let lane = lanes.iter().position(|l| *l == it.lane).unwrap_or(0);
        let x = x_of(it.at);
        let (lx, k) = last_x[lane];
        let k = if x - lx < 14.0 { k + 1 } else { 0 };
        last_x[lane] = (x, k);
        let offset = match k % 3 {
            0 => 0.0,
            1 => -9.0,
            _ => 9.0,
        };
        let y = TOP + LANE * lane as f64 + LANE / 2.0 + offset;
        let _ = write!(
            s,
            r##"<a href="#{}"><g class="mark {}{}"><title>{} · {} · {} · {}</title>"##,
            esc(&it.id),
            tlp_class(it.tlp),
            if it.unconfirmed { " unconfirmed" } else { "" },
            esc(&it.id),
            it.at.format("%Y-%m-%d %H:%M UTC"),
            esc(it.tlp.label()),
            esc(&it.title),
        );
        if it.unconfirmed {
            let _ = write!(
                s,
                r##"<circle class="unconfirmed-ring" cx="{x:.1}" cy="{y:.1}" r="11" fill="#ffffff" stroke="#64748b" stroke-width="1.2" stroke-dasharray="3 2"/>"##
            );
        }
        let _ = write!(
            s,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="7" fill="{}" stroke="#000000" stroke-width="2"/></g></a>"##,
            tlp_colour(it.tlp)
        );
    }
    s.push_str("</svg>");
    s
}

/// A tick step giving at most about eight ticks, and the label format for it.
fn tick_step(span: Duration) -> (Duration, &'static str) {
    let candidates = [
        (Duration::hours(1), "%H:%M"),
        (Duration::hours(3), "%m-%d %H:%M"),
        (Duration::hours(6), "%m-%d %H:%M"),
        (Duration::hours(12), "%m-%d %H:%M"),
        (Duration::days(1), "%m-%d"),
        (Duration::days(2), "%m-%d"),
        (Duration::days(7), "%Y-%m-%d"),
        (Duration::days(14), "%Y-%m-%d"),
        (Duration::days(30), "%Y-%m-%d"),
        (Duration::days(91), "%Y-%m-%d"),
        (Duration::days(365), "%Y"),
    ];
    for (step, fmt) in candidates {
        if span.num_seconds() / step.num_seconds() <= 8 {
            return (step, fmt);
        }
    }
    (Duration::days(365 * 5), "%Y")
}

fn floor_to(t: DateTime<Utc>, step: Duration) -> DateTime<Utc> {
    let s = step.num_seconds().max(1);
    let ts = t.timestamp();
    DateTime::from_timestamp(ts - ts.rem_euclid(s), 0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(i: usize) -> GraphReport {
        GraphReport {
            id: format!("R-{i}"),
            title: format!("<report {i}>"),
            tlp: Tlp::Amber,
            unconfirmed: i.is_multiple_of(2),
        }
    }

    fn obs(v: &str, reports: &[usize]) -> GraphObservable {
        GraphObservable {
            kind: ObservableKind::Domain,
            value: v.into(),
            reports: reports.to_vec(),
            mark: ValueMark::Plain,
        }
    }

    #[test]
    fn graph_draws_every_node_and_edge_escaped() {
        let reports: Vec<_> = (1..=3).map(report).collect();
        let observables = vec![
            obs("a.example", &[0, 1, 2]),
            obs("b.example", &[0]),
            obs("<x>", &[1, 2]),
        ];
        let svg = graph(&reports, &observables, Language::En);
        assert_eq!(svg.matches("<circle").count(), 3);
        assert_eq!(svg.matches("<line").count(), 3 + 1 + 2);
        assert_eq!(svg.matches(r#"class="report "#).count(), 3);
        assert!(svg.contains("&lt;x&gt;") && !svg.contains("<x>"));
        assert!(svg.contains("&lt;report 1&gt;"));
        assert_eq!(
            graph(&reports, &observables, Language::En),
            svg,
            "deterministic"
        );
    }

    #[test]
    fn large_graphs_are_capped_with_a_more_node() {
        let reports: Vec<_> = (1..=40).map(report).collect();
        let observables: Vec<_> = (0..400)
            .map(|i| obs(&format!("v{i:03}.example"), &[i % 40, (i * 7) % 40]))
            .collect();
        let svg = graph(&reports, &observables, Language::En);
        // 150 observables plus the "+250 more" node.
        assert_eq!(svg.matches("<circle").count(), MAX_OBSERVABLES + 1);
        assert!(svg.contains("+250 more"));
        assert!(svg.len() < 400_000, "svg is {} bytes", svg.len());
    }

    #[test]
    fn timeline_has_a_lane_per_source_and_a_mark_per_report() {
        let t = DateTime::parse_from_rfc3339("2026-11-18T01:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let items: Vec<_> = (0..5)
            .map(|i| TimelineItem {
                id: format!("R-{i}"),
                title: "t".into(),
                lane: if i < 3 {
                    "Council member".into()
                } else {
                    "jvn".into()
                },
                at: t + Duration::hours(i * 5),
                tlp: Tlp::Green,
                unconfirmed: i == 0,
            })
            .collect();
        let svg = timeline(&items, Language::En);
        assert_eq!(svg.matches(r#"class="lane-label""#).count(), 2);
        // Five marks, one of them with an unconfirmed ring.
        assert_eq!(svg.matches("<circle").count(), 6);
        assert!(svg.matches(r#"class="tick""#).count() >= 3);
    }
}
