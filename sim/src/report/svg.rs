//! Minimal inline-SVG charts: lines (optionally log-x) and a labelled scatter.

use std::fmt::Write as _;

const W: f64 = 640.0;
const H: f64 = 320.0;
const L: f64 = 60.0;
const R: f64 = 180.0;
const T: f64 = 20.0;
const B: f64 = 40.0;

pub const COLORS: [&str; 12] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#393b79", "#637939",
];

pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
}

impl Axis {
    fn new(values: impl Iterator<Item = f64>, log: bool) -> Axis {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter(|v| v.is_finite() && (!log || *v > 0.0)) {
            let v = if log { v.log10() } else { v };
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        if !log {
            lo = lo.min(0.0);
        }
        if hi - lo < 1e-9 {
            hi = lo + 1.0;
        }
        Axis { lo, hi, log }
    }
    fn frac(&self, v: f64) -> f64 {
        let v = if self.log { v.max(1e-9).log10() } else { v };
        ((v - self.lo) / (self.hi - self.lo)).clamp(0.0, 1.0)
    }
    fn label(&self, f: f64) -> String {
        let v = self.lo + f * (self.hi - self.lo);
        let v = if self.log { 10f64.powf(v) } else { v };
        if v.abs() >= 100.0 {
            format!("{v:.0}")
        } else {
            format!("{v:.2}")
        }
    }
}

fn frame(out: &mut String, title: &str, x: &Axis, y: &Axis, xl: &str, yl: &str) {
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="11"><text x="{L}" y="14" font-weight="bold">{}</text><rect x="{L}" y="{T}" width="{}" height="{}" fill="none" stroke="#999"/>"##,
        esc(title),
        W - L - R,
        H - T - B
    );
    for i in 0..=4 {
        let f = f64::from(i) / 4.0;
        let px = L + f * (W - L - R);
        let py = H - B - f * (H - T - B);
        let _ = write!(
            out,
            r#"<text x="{px}" y="{}" text-anchor="middle">{}</text><text x="{}" y="{}" text-anchor="end">{}</text>"#,
            H - B + 14.0,
            x.label(f),
            L - 4.0,
            py + 4.0,
            y.label(f)
        );
    }
    let _ = write!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">{}</text><text x="12" y="{}" transform="rotate(-90 12 {})" text-anchor="middle">{}</text>"#,
        L + (W - L - R) / 2.0,
        H - 6.0,
        esc(xl),
        T + (H - T - B) / 2.0,
        T + (H - T - B) / 2.0,
        esc(yl)
    );
}

fn px(x: &Axis, v: f64) -> f64 {
    L + x.frac(v) * (W - L - R)
}
fn py(y: &Axis, v: f64) -> f64 {
    H - B - y.frac(v) * (H - T - B)
}

pub fn lines(title: &str, series: &[Series], xl: &str, yl: &str, log_x: bool) -> String {
    let x = Axis::new(
        series.iter().flat_map(|s| s.points.iter().map(|p| p.0)),
        log_x,
    );
    let y = Axis::new(
        series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
        false,
    );
    let mut out = String::new();
    frame(&mut out, title, &x, &y, xl, yl);
    for (i, s) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let pts: Vec<String> = s
            .points
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite() && (!log_x || p.0 > 0.0))
            .map(|p| format!("{:.1},{:.1}", px(&x, p.0), py(&y, p.1)))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="4 3""#
        } else {
            ""
        };
        let _ = write!(
            out,
            r#"<polyline fill="none" stroke="{c}" stroke-width="1.5"{dash} points="{}"/><text x="{}" y="{}" fill="{c}">{}</text>"#,
            pts.join(" "),
            W - R + 6.0,
            T + 12.0 + 13.0 * i as f64,
            esc(&s.name)
        );
    }
    out.push_str("</svg>");
    out
}

pub fn scatter(title: &str, points: &[(String, f64, f64)], xl: &str, yl: &str) -> String {
    let x = Axis::new(points.iter().map(|p| p.1), false);
    let y = Axis::new(points.iter().map(|p| p.2), false);
    let mut out = String::new();
    frame(&mut out, title, &x, &y, xl, yl);
    for (i, (name, a, b)) in points.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        let _ = write!(
            out,
            r#"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{c}"><title>{}</title></circle><text x="{}" y="{}" fill="{c}">{}</text>"#,
            px(&x, *a),
            py(&y, *b),
            esc(name),
            W - R + 6.0,
            T + 12.0 + 13.0 * i as f64,
            esc(name)
        );
    }
    out.push_str("</svg>");
    out
}
