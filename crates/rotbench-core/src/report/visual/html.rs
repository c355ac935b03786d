//! `index.html`: one self-contained page (inline SVG, data-URI PNGs, CSS and a
//! little vanilla JavaScript; no network requests, a CSP forbids them) with the
//! run metadata, a summary table per model, the plots, an angle explorer
//! (confusion matrix and per-class P/R/F1 at the chosen angle) and a gallery of
//! misclassified examples.
//!
//! Every string that comes from a dataset, a model or a sidecar goes through
//! [`escape`]; the explorer's data sits in a `<script type="application/json">`
//! with `<`, `>` and `&` written as `\u003c` etc. ([`json_for_script`]), and the
//! script builds the DOM with `textContent` only.

use super::charts::Plot;
use super::frames::{class_name, Frames, GALLERY_CAP};
use super::palette::{colour_hex, model_color, BLUES};
use super::View;
use crate::format::{deg, duration, pct};
use crate::rotate::Fill;
use crate::summary::{AngleMetrics, ModelSummary};
use anyhow::Result;
use base64::Engine;
use serde_json::{json, Value};

/// The explorer shows a full confusion matrix up to this many classes.
pub const CONFUSION_LIMIT: usize = 30;
/// The explorer lists per-class scores up to this many classes.
pub const PER_CLASS_LIMIT: usize = 100;

/// Escape text for HTML element content and quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON that is safe inside `<script type="application/json">`: no `<`, `>` or
/// `&` can appear (they only occur inside JSON strings, where `\u003c` etc.
/// mean the same), so no value can close the script element.
pub fn json_for_script(v: &Value) -> String {
    let s = v.to_string();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

fn data_uri_png(png: &[u8]) -> String {
    format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(png)
    )
}

/// Four decimals are plenty for the page and keep it small; NaN becomes null.
fn r4(v: f64) -> Value {
    if v.is_finite() {
        json!((v * 1e4).round() / 1e4)
    } else {
        Value::Null
    }
}

macro_rules! w {
    ($dst:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = write!($dst, $($arg)*);
    }};
}

/// "0° to 345° in steps of 15° (24 angles)" for an even sweep, else the list.
pub fn describe_angles(angles: &[f64]) -> String {
    let n = angles.len();
    if n >= 3 {
        let step = angles[1] - angles[0];
        let even = step > 0.0
            && angles
                .windows(2)
                .all(|p| ((p[1] - p[0]) - step).abs() < 1e-9);
        if even {
            return format!(
                "{} to {} in steps of {} ({n} angles)",
                deg(angles[0]),
                deg(angles[n - 1]),
                deg(step)
            );
        }
    }
    let shown: Vec<String> = angles.iter().take(24).map(|&a| deg(a)).collect();
    let more = if n > 24 { ", …" } else { "" };
    format!(
        "{}{more} ({n} angle{})",
        shown.join(", "),
        if n == 1 { "" } else { "s" }
    )
}

const CSS: &str = r#"
:root{--ink:#212529;--muted:#6c757d;--line:#dee2e6;--bg:#f6f7f9;--card:#fff;--accent:#1f77b4;--good:#198754;--bad:#c82333}
*{box-sizing:border-box}
body{margin:0;font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:var(--ink);background:var(--bg)}
header.top{background:#1d2733;color:#fff;padding:22px 32px 18px}
header.top h1{margin:0;font-size:22px;font-weight:600}
header.top p{margin:4px 0 0;color:#c5ced8}
header.top code{background:rgba(255,255,255,.12);color:#fff}
nav{background:#26313e;padding:0 32px;position:sticky;top:0;z-index:2}
nav a{display:inline-block;color:#dfe6ee;text-decoration:none;padding:9px 12px 9px 0;margin-right:14px;font-size:13px}
nav a:hover{color:#fff}
main{max-width:1240px;margin:0 auto;padding:8px 24px 40px}
section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:18px 22px;margin:18px 0}
h2{font-size:18px;margin:0 0 12px;font-weight:600}
h3{font-size:15px;margin:16px 0 8px;font-weight:600}
table{border-collapse:collapse}
table.data{width:100%}
table.data th,table.data td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:right;white-space:nowrap;font-variant-numeric:tabular-nums}
table.data th:first-child,table.data td:first-child{text-align:left;padding-left:0}
table.data thead th{font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.03em;white-space:normal;vertical-align:bottom;line-height:1.3}
table.data td.wrap{white-space:normal;overflow-wrap:anywhere}
table.data .ci{white-space:nowrap}
table.meta th{text-align:left;color:var(--muted);font-weight:500;padding:4px 18px 4px 0;vertical-align:top;white-space:nowrap}
table.meta td{padding:4px 0;overflow-wrap:anywhere}
code{font:12px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;background:#f1f3f5;padding:1px 4px;border-radius:3px}
.swatch{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:7px;vertical-align:baseline}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:14px;margin-bottom:14px}
figure{margin:0}
figure.plot{border:1px solid var(--line);border-radius:6px;padding:6px;background:#fff;overflow:auto;display:flex;flex-direction:column;justify-content:center}
figure.wide{grid-column:1/-1}
#plot-polar svg{max-width:min(100%,390px)}
figure.plot svg,figure.plot img{display:block;max-width:100%;height:auto;margin:0 auto}
figcaption{color:var(--muted);font-size:12px;margin-top:4px;text-align:center}
.note{color:var(--muted);font-size:12.5px}
.warning{border-left:4px solid #b45309;background:#fffbeb;padding:6px 10px;margin:6px 0;font-size:13.5px}
.controls{display:flex;flex-wrap:wrap;gap:18px;align-items:center;margin-bottom:12px}
.controls input[type=range]{width:min(520px,70vw)}
.angle{font-size:20px;font-weight:600;min-width:70px;display:inline-block}
.chips{display:flex;flex-wrap:wrap;gap:10px;margin:6px 0 14px}
.chip{background:#f1f3f5;border-radius:6px;padding:6px 10px}
.chip b{display:block;font-size:16px}
.chip span{color:var(--muted);font-size:12px}
.cols{display:grid;grid-template-columns:minmax(0,1.2fr) minmax(0,1fr);gap:22px}
@media (max-width:900px){.cols{grid-template-columns:1fr}}
table.cm td,table.cm th{border:1px solid #fff;padding:0;text-align:center;font-size:12px;min-width:34px;height:30px}
table.cm th{color:var(--muted);font-weight:500;padding:0 6px;max-width:110px;overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
table.cm thead th:not(.corner){writing-mode:vertical-rl;transform:rotate(180deg);max-width:none;max-height:110px;padding:6px 0;vertical-align:bottom;text-align:left}
table.cm th.corner{font-size:11px}
.scroll{overflow:auto;max-width:100%}
.gallery{display:flex;flex-wrap:wrap;gap:12px}
.thumb{border:1px solid var(--line);border-radius:6px;padding:6px;background:#fff;font-size:12px}
.thumb>div:not(.img){overflow:hidden;text-overflow:ellipsis;white-space:nowrap}
.thumb .img{image-rendering:pixelated;background-repeat:no-repeat;margin:0 auto 4px;background-color:#000}
.thumb .t{color:var(--good)}
.thumb .p{color:var(--bad)}
.thumb .i{color:var(--muted)}
.zd{color:var(--bad)}
footer{color:var(--muted);font-size:12px;text-align:center;margin:20px 0}
"#;

const JS: &str = r#"
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('rb-data').textContent);
  var slider = document.getElementById('rb-angle');
  var modelSel = document.getElementById('rb-model');
  var BLUES = data.blues;
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function clear(e) { while (e.firstChild) e.removeChild(e.firstChild); }
  function pct(v) { return (v === null || v === undefined || !isFinite(v)) ? '\u2013' : (v * 100).toFixed(1) + '%'; }
  function num(v) { return (v === null || v === undefined || !isFinite(v)) ? '\u2013' : v.toFixed(3); }
  function deg(a) { return String(a) + '\u00b0'; }
  function cls(m, c) { return c < 0 ? 'invalid (NaN/inf)' : (c < m.classes.length ? m.classes[c] : 'class ' + c); }
  function blues(v) {
    v = Math.max(0, Math.min(1, v || 0));
    var x = v * (BLUES.length - 1), i = Math.min(Math.floor(x), BLUES.length - 2), t = x - i;
    var a = BLUES[i], b = BLUES[i + 1];
    return 'rgb(' + [0, 1, 2].map(function (k) { return Math.round(a[k] + (b[k] - a[k]) * t); }).join(',') + ')';
  }
  function chip(parent, value, label) {
    var c = el('div', 'chip');
    c.appendChild(el('b', null, value));
    c.appendChild(el('span', null, label));
    parent.appendChild(c);
  }
  function stats(m, a) {
    var box = document.getElementById('rb-stats');
    clear(box);
    chip(box, pct(a.acc), 'accuracy (95% CI ' + pct(a.lo) + ' \u2013 ' + pct(a.hi) + ')');
    chip(box, num(a.f1), 'macro-F1');
    chip(box, pct(a.cons), 'same prediction as at 0\u00b0');
    chip(box, a.correct + ' / ' + a.n, 'correct');
    if (a.topk !== undefined) chip(box, pct(a.topk), 'top-' + data.topK + ' accuracy');
    chip(box, pct(a.ece), 'ECE (mean confidence ' + pct(a.mconf) + ')');
    chip(box, num(a.nll), 'NLL');
    chip(box, num(a.brier), 'Brier');
    if (a.flip !== undefined) chip(box, pct(a.flip), 'predictions that change at the next angle');
    if (a.dist !== undefined) chip(box, num(a.dist), 'top-' + data.topK + ' ranking distance to the next angle');
  }
  function confusion(m, a) {
    var box = document.getElementById('rb-confusion');
    clear(box);
    if (!a.conf) {
      box.appendChild(el('p', 'note', m.classes.length + ' classes are too many to draw here; confusion.csv has every count.'));
      return;
    }
    var t = el('table', 'cm'), head = el('tr');
    var corner = el('th', 'corner', 'true \u2193 / pred \u2192');
    head.appendChild(corner);
    m.classes.forEach(function (c) { var th = el('th', null, c); th.title = c; head.appendChild(th); });
    var thead = el('thead'); thead.appendChild(head); t.appendChild(thead);
    var body = el('tbody');
    a.conf.forEach(function (row, i) {
      var tr = el('tr'), th = el('th', null, m.classes[i]);
      th.title = m.classes[i];
      tr.appendChild(th);
      var total = row.reduce(function (s, v) { return s + v; }, 0) + (a.inv ? a.inv[i] : 0);
      row.forEach(function (v, j) {
        var share = total ? v / total : 0;
        var td = el('td', null, v ? v : '');
        td.style.background = blues(share);
        td.style.color = share > 0.55 ? '#fff' : '#212529';
        td.title = 'true ' + m.classes[i] + ', predicted ' + m.classes[j] + ': ' + v + ' (' + pct(share) + ' of the row)';
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    t.appendChild(body);
    box.appendChild(t);
    box.appendChild(el('p', 'note', 'Counts; colour is the share of the row (the true class). Hover a cell for details.'));
  }
  function perClass(m, a) {
    var box = document.getElementById('rb-perclass');
    clear(box);
    if (!a.p) {
      box.appendChild(el('p', 'note', m.classes.length + ' classes are too many to list here; per_class.csv has every score.'));
      return;
    }
    var t = el('table', 'data'), head = el('tr');
    ['class', 'precision', 'recall', 'F1', 'support'].forEach(function (h) { head.appendChild(el('th', null, h)); });
    var thead = el('thead'); thead.appendChild(head); t.appendChild(thead);
    var body = el('tbody'), zd = {};
    (a.zd || []).forEach(function (c) { zd[c] = true; });
    m.classes.forEach(function (c, i) {
      var tr = el('tr');
      var name = el('td', 'wrap', c);
      if (zd[i]) { var star = el('span', 'zd', ' *'); star.title = 'a denominator was 0; the value is 0'; name.appendChild(star); }
      tr.appendChild(name);
      [a.p[i], a.r[i], a.f[i]].forEach(function (v) { tr.appendChild(el('td', null, num(v))); });
      tr.appendChild(el('td', null, a.s[i]));
      body.appendChild(tr);
    });
    t.appendChild(body);
    box.appendChild(t);
    if (a.zd && a.zd.length) box.appendChild(el('p', 'note', '* precision, recall or F1 had a zero denominator and is 0 (scikit-learn zero_division=0).'));
  }
  function gallery(mi, ai) {
    var box = document.getElementById('rb-gallery');
    var info = document.getElementById('rb-gallery-info');
    clear(box);
    if (!data.gallery) { info.textContent = 'No example images were kept (examples.json is missing).'; return; }
    var g = data.gallery, ga = g.angles[ai], m = data.models[mi];
    var s = Math.max(1, Math.floor(84 / Math.max(g.tw, g.th)));
    var shown = 0;
    ga.items.forEach(function (it, j) {
      var pred = it[2][mi];
      if (pred === it[1]) return;
      shown++;
      var f = el('figure', 'thumb');
      f.style.width = (Math.max(g.tw * s, 96) + 14) + 'px';
      var img = el('div', 'img');
      img.style.width = (g.tw * s) + 'px';
      img.style.height = (g.th * s) + 'px';
      img.style.backgroundImage = 'url("' + ga.sprite + '")';
      img.style.backgroundSize = (ga.items.length * g.tw * s) + 'px ' + (g.th * s) + 'px';
      img.style.backgroundPosition = (-j * g.tw * s) + 'px 0';
      img.setAttribute('role', 'img');
      img.setAttribute('aria-label', 'sample ' + it[0] + ' rotated by ' + deg(data.angles[ai]));
      f.appendChild(img);
      [['t', 'true: ' + cls(m, it[1])], ['p', 'pred: ' + cls(m, pred)]].forEach(function (line) {
        var d = el('div', line[0], line[1]);
        d.title = line[1];
        f.appendChild(d);
      });
      var where = el('div', 'i', '#' + it[0] + (it[3] ? ' ' + it[3] : ''));
      where.title = it[3] || ('sample ' + it[0]);
      f.appendChild(where);
      box.appendChild(f);
    });
    var wrong = ga.wrong[mi];
    info.textContent = wrong === 0
      ? 'No mistakes among the first ' + g.kept + ' samples at ' + deg(data.angles[ai]) + '.'
      : 'Showing ' + shown + ' of ' + wrong + ' misclassified among the first ' + g.kept + ' samples at ' + deg(data.angles[ai]) + '.';
  }
  function render() {
    var ai = +slider.value, mi = modelSel ? +modelSel.value : 0;
    var m = data.models[mi], a = m.angles[ai];
    document.getElementById('rb-angle-label').textContent = deg(data.angles[ai]);
    slider.setAttribute('aria-valuetext', deg(data.angles[ai]));
    stats(m, a);
    confusion(m, a);
    perClass(m, a);
    gallery(mi, ai);
  }
  slider.addEventListener('input', render);
  if (modelSel) modelSel.addEventListener('change', render);
  render();
})();
"#;

fn per_angle_json(a: &AngleMetrics, n_classes: usize) -> Value {
    let conf = (n_classes <= CONFUSION_LIMIT).then(|| {
        let mut dense = vec![vec![0u64; n_classes]; n_classes];
        for &[t, p, k] in &a.confusion {
            if let Some(cell) = dense
                .get_mut(t as usize)
                .and_then(|r| r.get_mut(p as usize))
            {
                *cell = k;
            }
        }
        json!(dense)
    });
    let mut v = json!({
        "acc": r4(a.accuracy),
        "lo": r4(a.accuracy_ci_low),
        "hi": r4(a.accuracy_ci_high),
        "f1": r4(a.f1_macro),
        "cons": r4(a.consistency),
        "nll": r4(a.nll),
        "brier": r4(a.brier),
        "ece": r4(a.ece),
        "mconf": r4(a.mean_confidence),
        "n": a.n,
        "correct": a.correct,
        "conf": conf,
        "inv": (0..n_classes).map(|t| a.invalid_of(t)).collect::<Vec<_>>(),
    });
    if let Some(t) = a.top_k_accuracy {
        v["topk"] = r4(t);
    }
    if let Some(f) = a.flip_next {
        v["flip"] = r4(f);
    }
    if let Some(d) = a.top_k_distance_next {
        v["dist"] = r4(d);
    }
    if n_classes <= PER_CLASS_LIMIT {
        let scores: Vec<_> = (0..n_classes).map(|c| a.class_scores(c)).collect();
        v["p"] = scores.iter().map(|c| r4(c.precision)).collect();
        v["r"] = scores.iter().map(|c| r4(c.recall)).collect();
        v["f"] = scores.iter().map(|c| r4(c.f1)).collect();
        v["s"] = scores.iter().map(|c| json!(c.support)).collect();
        v["zd"] = json!(a.zero_division_classes);
    }
    v
}

fn explorer_data(view: &View<'_>, frames: Option<&Frames>) -> Value {
    let models: Vec<Value> = view
        .models()
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let classes = view.class_names(i);
            let n = classes.len();
            json!({
                "name": m.id.name,
                "classes": classes,
                "angles": view.order.iter().map(|&ai| per_angle_json(&m.angles[ai], n)).collect::<Vec<_>>(),
            })
        })
        .collect();
    let gallery = frames.map(|f| {
        let g = &f.gallery;
        json!({
            "tw": g.thumb.0,
            "th": g.thumb.1,
            "kept": g.kept,
            "angles": g.angles.iter().map(|a| json!({
                "sprite": if a.sprite.is_empty() { String::new() } else { data_uri_png(&a.sprite) },
                "items": a.items.iter().map(|it| json!([it.index, it.label, it.preds, it.source])).collect::<Vec<_>>(),
                "wrong": a.wrong,
            })).collect::<Vec<_>>(),
        })
    });
    json!({
        "angles": view.angles(),
        "topK": view.summary.settings.top_k,
        "models": models,
        "blues": BLUES.iter().map(|c| [c.0, c.1, c.2]).collect::<Vec<_>>(),
        "gallery": gallery,
    })
}

fn img(p: &Plot) -> String {
    format!(
        r#"<img src="{}" width="{}" height="{}" alt="{}" data-file="plots/{}.png">"#,
        data_uri_png(&p.png),
        p.width,
        p.height,
        escape(&p.title),
        escape(&p.stem)
    )
}

/// A plot as inline SVG when there is one, else as a data-URI PNG.
fn figure(out: &mut String, p: &Plot) {
    w!(
        out,
        r#"<figure class="plot{}" id="plot-{}">"#,
        if p.wide { " wide" } else { "" },
        escape(&p.stem)
    );
    match &p.svg {
        Some(svg) => {
            // The SVG comes from plotters, which escapes its text; drop the XML prolog if any.
            let start = svg.find("<svg").unwrap_or(0);
            w!(
                out,
                r#"<div role="img" aria-label="{}" data-file="plots/{}.svg">{}</div>"#,
                escape(&p.title),
                escape(&p.stem),
                &svg[start..]
            );
        }
        None => out.push_str(&img(p)),
    }
    w!(
        out,
        "<figcaption>{}</figcaption></figure>\n",
        escape(p.caption)
    );
}

/// What makes the results less than they seem, above the summary table: the
/// models' warnings (training mode, one class predicted for everything, a mean
/// or std off the pixel scale), the dataset's (sorted class folders), and the
/// samples left out with --drop-unscored.
fn warnings(out: &mut String, view: &View<'_>) {
    let d = &view.summary.dataset;
    let mut all: Vec<String> = view
        .models()
        .iter()
        .flat_map(|m| m.id.warnings.iter().cloned())
        .chain(d.warnings.iter().cloned())
        .collect();
    if let Some(dr) = &d.dropped {
        all.push(format!("{} samples left out: {}", dr.samples, dr.reason));
    }
    for w in all {
        w!(
            out,
            r#"<p class="warning"><strong>Warning:</strong> {}</p>"#,
            escape(&w)
        );
    }
}

fn summary_table(out: &mut String, view: &View<'_>) {
    out.push_str(
        r#"<div class="scroll" data-fit="the summary table"><table class="data"><thead><tr><th>Model</th><th>Accuracy at 0°</th><th>Mean accuracy</th><th>Worst angle</th><th>Accuracy there</th><th>Worst-of-sweep</th><th>Consistency at worst</th><th>Mean ÷ 0°</th><th>Flip probability</th><th>ECE at 0° / worst</th></tr></thead><tbody>"#,
    );
    for (i, m) in view.models().iter().enumerate() {
        let s = &m.sweep;
        let ci = m
            .angles
            .iter()
            .find(|a| a.reference)
            .map(|a| {
                format!(
                    r#" <span class="note ci">({} – {})</span>"#,
                    pct(a.accuracy_ci_low),
                    pct(a.accuracy_ci_high)
                )
            })
            .unwrap_or_default();
        let ece0 = m
            .angles
            .iter()
            .find(|a| a.reference)
            .map_or("–".into(), |a| pct(a.ece));
        let flip = match (s.flip_probability, s.flip_probability_ci) {
            (Some(f), Some([lo, hi])) => format!(
                r#"{}<span class="note ci"> ({} – {})</span>"#,
                pct(f),
                pct(lo),
                pct(hi)
            ),
            (Some(f), None) => pct(f),
            (None, _) => "–".into(),
        };
        w!(
            out,
            r#"<tr><td><span class="swatch" style="background:{}"></span>{}</td><td class="wrap">{}{ci}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class="wrap">{flip}</td><td class="wrap">{ece0} / {} at {}</td></tr>"#,
            colour_hex(model_color(i)),
            escape(&m.id.name),
            pct(s.accuracy_at_reference),
            pct(s.mean_accuracy),
            deg(s.worst_angle),
            pct(s.worst_accuracy),
            pct(s.worst_of_sweep_accuracy),
            pct(s.consistency_at_worst),
            if s.relative_robustness.is_finite() {
                format!("{:.3}", s.relative_robustness)
            } else {
                "–".into()
            },
            pct(s.worst_ece),
            deg(s.worst_ece_angle)
        );
    }
    out.push_str("</tbody></table></div>\n");
    out.push_str(r#"<p class="note">Mean accuracy is over the swept angles. Worst-of-sweep is the share of samples classified correctly at every swept angle (Engstrom et al. 2019). Mean ÷ 0° (relative robustness) is the mean accuracy divided by the accuracy at 0°: 1 for a model that loses nothing when turned. Consistency is the share of samples whose prediction equals their prediction at 0°. Flip probability is the mean share of samples whose prediction changes from one angle to the next (ImageNet-P). ECE is the expected calibration error over 15 confidence bins. Accuracy intervals are Wilson 95%; the flip-probability interval is a bootstrap 95% percentile interval over samples.</p>"#);
}

/// With `--translate` or `--worst-of`: Engstrom et al.'s four accuracies per model.
fn spatial_table(out: &mut String, view: &View<'_>) {
    let spatial = |m: &ModelSummary| {
        m.sweep.worst_of_k.is_some()
            || m.sweep.worst_shift.is_some()
            || m.sweep.early_stop.is_some()
    };
    if !view.models().iter().any(spatial) {
        return;
    }
    let k = view
        .models()
        .iter()
        .find_map(|m| m.sweep.worst_of_k.as_ref().map(|w| w.k));
    let worst_head = k.map_or("Worst-of-K".to_string(), |k| format!("Worst-of-{k}"));
    w!(
        out,
        r#"<h3>Spatial robustness</h3><div class="scroll" data-fit="the spatial table"><table class="data"><thead><tr><th>Model</th><th>Natural</th><th>Random</th><th>{worst_head}</th><th>Grid</th></tr></thead><tbody>"#
    );
    let with_ci = |v: f64, [lo, hi]: [f64; 2]| {
        format!(
            r#"{}<span class="note ci"> ({} – {})</span>"#,
            pct(v),
            pct(lo),
            pct(hi)
        )
    };
    for (i, m) in view.models().iter().enumerate() {
        let s = &m.sweep;
        let (random, worst) = match &s.worst_of_k {
            Some(w) => (
                with_ci(w.random_accuracy, w.random_accuracy_ci),
                with_ci(w.accuracy, w.accuracy_ci),
            ),
            None => ("–".into(), "–".into()),
        };
        w!(
            out,
            r#"<tr><td><span class="swatch" style="background:{}"></span>{}</td><td>{}</td><td class="wrap">{random}</td><td class="wrap">{worst}</td><td class="wrap">{}</td></tr>"#,
            colour_hex(model_color(i)),
            escape(&m.id.name),
            pct(s.accuracy_at_reference),
            with_ci(s.grid_accuracy, s.grid_accuracy_ci)
        );
    }
    out.push_str("</tbody></table></div>\n");
    if let Some(e) = view
        .models()
        .iter()
        .find_map(|m| m.sweep.early_stop.as_ref())
    {
        w!(
            out,
            r#"<p class="note">Run with --grid-early-stop: a sample's remaining grid points were skipped after its first mistake (the first model made {} of {} evaluations), so only the upright point's figures are shown; grid accuracy covers all {} points.</p>"#,
            e.evaluations,
            e.evaluations_without_stop,
            e.points
        );
    }
    out.push_str(r#"<p class="note">As Engstrom et al. (2019) report them: natural is the accuracy upright; random, the accuracy at one random pose per sample (the first draw of --worst-of); worst-of-K, the share of samples right at all K random poses, uniform over the ranges of the angles and translations; grid, the share right at every point of the grid. Intervals are Wilson 95%.</p>"#);
}

fn model_rows(out: &mut String, i: usize, m: &ModelSummary) {
    let spec = &m.id.spec;
    let list = |v: &[f32]| {
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    w!(
        out,
        r#"<tr><th><span class="swatch" style="background:{}"></span>Model {}</th><td><b>{}</b><br>path <code>{}</code><br>sha256 <code>{}</code><br>input {}×{}×{} (C×H×W), mean [{}], std [{}], {} classes</td></tr>"#,
        colour_hex(model_color(i)),
        i + 1,
        escape(&m.id.name),
        escape(&m.id.path),
        escape(&m.id.sha256),
        spec.input[0],
        spec.input[1],
        spec.input[2],
        escape(&list(&spec.mean)),
        escape(&list(&spec.std)),
        spec.classes.len()
    );
}

/// The run card's rows for `--protocol` (its overrides and `--relative-to`) and
/// for a difficulty other than 1.
fn protocol_rows(out: &mut String, set: &crate::summary::Settings) {
    let row = |out: &mut String, k: &str, v: String| w!(out, "<tr><th>{k}</th><td>{v}</td></tr>");
    if let Some(p) = &set.protocol {
        let changed: Vec<String> = p
            .overrides
            .iter()
            .map(|o| format!("{} {} (protocol: {})", o.flag, o.given, o.protocol))
            .collect();
        let mut text = format!("{} ({})", p.name, p.source);
        if !changed.is_empty() {
            text.push_str(&format!(
                "; changed by flags, so not the published protocol: {}",
                changed.join(", ")
            ));
        }
        if let Some(r) = &p.relative_to {
            text.push_str(&format!("; relative figures against {r}"));
        }
        row(out, "Protocol", escape(&text));
    }
    if set.difficulty != 1 {
        row(
            out,
            "Difficulty",
            format!(
                "{}: flips and ranking distances compare each angle with the one {} places on",
                set.difficulty, set.difficulty
            ),
        );
    }
}

fn metadata(out: &mut String, view: &View<'_>, wall_seconds: Option<f64>) {
    let s = view.summary;
    let set = &s.settings;
    let d = &s.dataset;
    out.push_str(r#"<table class="meta"><tbody>"#);
    for (i, m) in view.models().iter().enumerate() {
        model_rows(out, i, m);
    }
    let classes = view.class_names(0);
    let shown: Vec<String> = classes.iter().take(30).cloned().collect();
    let more = if classes.len() > 30 {
        format!(", … ({} in all)", classes.len())
    } else {
        String::new()
    };
    let row = |out: &mut String, k: &str, v: String| w!(out, "<tr><th>{k}</th><td>{v}</td></tr>");
    row(
        out,
        "Dataset",
        format!(
            "<code>{}</code> ({}), {} of {} samples, sha256 <code>{}</code>, class order: {}",
            escape(&d.path),
            escape(&d.format),
            d.n,
            d.total,
            escape(&d.sha256),
            escape(&d.class_order)
        ),
    );
    row(
        out,
        "Classes",
        format!("{}{}", escape(&shown.join(", ")), escape(&more)),
    );
    if !d.skipped.is_empty() {
        row(
            out,
            "Skipped images",
            format!("{} unreadable (listed in summary.json)", d.skipped.len()),
        );
    }
    if !d.ignored.is_empty() {
        row(
            out,
            "Ignored files",
            format!(
                "{} not samples: other extensions, outside the class folders, or hidden (listed in summary.json)",
                d.ignored.len()
            ),
        );
    }
    protocol_rows(out, set);
    let mut angles = describe_angles(&set.angles);
    if set.reference_added {
        angles.push_str("; 0° added as the reference");
    }
    row(out, "Angles", escape(&angles));
    row(out, "Interpolation", escape(set.interpolation.name()));
    let fill = match set.fill {
        Fill::Edge => "edge (replicate the nearest edge pixel)".to_string(),
        Fill::Reflect => "reflect (mirror about the border)".to_string(),
        Fill::Constant(v) => format!("constant {v} (0 black, 1 white)"),
    };
    row(
        out,
        "Fill",
        format!(
            "{}{}",
            escape(&fill),
            if set.mask_circle {
                "; everything outside the inscribed circle blanked at every angle"
            } else {
                ""
            }
        ),
    );
    // Every model in one run shares its preprocessing (the engine checks).
    if let Some(m) = s.models.first() {
        let p = &m.id.spec.preprocess;
        let resize = match p.resize {
            None => "straight to the input size when an image differs".to_string(),
            Some(crate::spec::Resize::Shorter(n)) => {
                format!("shorter side to {n}, then centre crop")
            }
            Some(crate::spec::Resize::Exact([h, w])) => format!("to {h}x{w}, then centre crop"),
        };
        let order = serde_json::to_value(p.order)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        // The channel order means nothing for one channel.
        let channels = match m.id.spec.input[0] {
            1 => "1 channel (grey)".to_string(),
            _ => serde_json::to_value(p.channel_order)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        };
        row(
            out,
            "Preprocessing",
            escape(&format!(
                "input {}x{}x{}; resize {resize}; {order}; {channels}; pixels on the [0,{}] scale, then (x - mean) / std",
                m.id.spec.input[0], m.id.spec.input[1], m.id.spec.input[2], p.value_range
            )),
        );
    }
    row(out, "Device", escape(&set.device));
    row(out, "Inference", escape(set.inference.name()));
    row(
        out,
        "Batch size / samples",
        format!(
            "{} / {}",
            escape(&set.batch_size.to_string()),
            match (set.limit, set.sample) {
                (Some(l), _) => format!("the first {l} (--limit)"),
                (None, Some(n)) => format!(
                    "a class-stratified sample of {n} (--sample, seed {})",
                    set.seed
                ),
                (None, None) => "all samples".to_string(),
            }
        ),
    );
    row(out, "rotbench", escape(&s.rotbench_version));
    row(out, "libtorch", escape(&s.libtorch_version));
    row(
        out,
        "Wall time",
        wall_seconds.map_or("not recorded (no timing.json)".to_string(), duration),
    );
    out.push_str("</tbody></table>\n");
}

/// The explorer opens at the first model's worst swept angle: the interesting one.
fn start_angle(view: &View<'_>) -> usize {
    let m = &view.models()[0];
    let worst = view
        .order
        .iter()
        .position(|&ai| m.angles[ai].in_sweep && m.angles[ai].angle == m.sweep.worst_angle);
    let reference = view.order.iter().position(|&ai| m.angles[ai].reference);
    worst.or(reference).unwrap_or(0)
}

/// The whole page.
pub(crate) fn page(
    view: &View<'_>,
    plots: &[Plot],
    frames: Option<&Frames>,
    wall_seconds: Option<f64>,
) -> Result<String> {
    let s = view.summary;
    let names: Vec<&str> = view.models().iter().map(|m| m.id.name.as_str()).collect();
    let angles = view.angles();
    let mut out = String::with_capacity(1 << 20);
    out.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'\">\n");
    out.push_str("<link rel=\"icon\" href=\"data:,\">\n");
    w!(
        out,
        "<title>rotbench report: {} on {}</title>\n",
        escape(&names.join(", ")),
        escape(&s.dataset.path)
    );
    w!(out, "<style>{CSS}</style>\n</head>\n<body>\n");
    w!(
        out,
        "<header class=\"top\"><h1>Rotation robustness report</h1><p>{} on <code>{}</code> · {} samples · {}</p></header>\n",
        escape(&names.join(", ")),
        escape(&s.dataset.path),
        s.dataset.n,
        escape(&describe_angles(&s.settings.angles))
    );
    out.push_str("<nav><a href=\"#summary\">Summary</a><a href=\"#plots\">Plots</a><a href=\"#explorer\">Angle explorer</a><a href=\"#gallery\">Misclassified</a><a href=\"#run\">Run</a></nav>\n<main>\n");

    out.push_str("<section id=\"summary\"><h2>Summary</h2>\n");
    warnings(&mut out, view);
    summary_table(&mut out, view);
    spatial_table(&mut out, view);
    out.push_str("</section>\n");

    out.push_str("<section id=\"plots\"><h2>Plots</h2>\n<div class=\"grid\">\n");
    // Each chart carries its caption and section (charts::all): shared charts here,
    // in the order drawn; each model's below.
    for p in plots.iter().filter(|p| p.model.is_none()) {
        figure(&mut out, p);
    }
    out.push_str("</div>\n");
    if let Some(f) = frames {
        out.push_str(
            "<h3>One sample through the sweep</h3>\n<figure class=\"plot wide\" id=\"plot-strip\">",
        );
        w!(
            out,
            r#"<img src="{}" width="{}" height="{}" alt="sample {} rotated through the sweep" data-file="plots/strip.png">"#,
            data_uri_png(&f.strip.png),
            f.strip.width,
            f.strip.height,
            f.strip.index
        );
        w!(
            out,
            "<figcaption>Sample #{} (true class {}), rotated exactly as the sweep rotated it; green: correct, red: wrong.</figcaption></figure>\n",
            f.strip.index,
            escape(&class_name(&view.class_names(0), f.strip.label as i64))
        );
    }
    for (i, m) in view.models().iter().enumerate() {
        w!(out, "<h3><span class=\"swatch\" style=\"background:{}\"></span>{}</h3>\n<div class=\"grid\">\n", colour_hex(model_color(i)), escape(&m.id.name));
        for p in plots.iter().filter(|p| p.model == Some(i)) {
            figure(&mut out, p);
        }
        out.push_str("</div>\n");
    }
    out.push_str("</section>\n");

    out.push_str("<section id=\"explorer\"><h2>Angle explorer</h2>\n<div class=\"controls\">");
    w!(
        out,
        "<label for=\"rb-angle\">Angle</label><input type=\"range\" id=\"rb-angle\" min=\"0\" max=\"{}\" step=\"1\" value=\"{}\"><span class=\"angle\" id=\"rb-angle-label\"></span>",
        angles.len().saturating_sub(1),
        start_angle(view)
    );
    if view.models().len() > 1 {
        out.push_str("<label for=\"rb-model\">Model</label><select id=\"rb-model\">");
        for (i, m) in view.models().iter().enumerate() {
            w!(out, "<option value=\"{i}\">{}</option>", escape(&m.id.name));
        }
        out.push_str("</select>");
    }
    out.push_str("</div>\n<div class=\"chips\" id=\"rb-stats\"></div>\n<div class=\"cols\"><div><h3>Confusion matrix</h3><div class=\"scroll\" id=\"rb-confusion\" data-fit=\"the explorer's confusion matrix\"></div></div><div><h3>Per-class scores</h3><div class=\"scroll\" id=\"rb-perclass\" data-fit=\"the explorer's per-class scores\"></div></div></div>\n");
    w!(
        out,
        "<h3 id=\"gallery\">Misclassified examples at this angle</h3><p class=\"note\" id=\"rb-gallery-info\"></p><div class=\"gallery\" id=\"rb-gallery\"></div>\n<p class=\"note\">The gallery draws from the first samples of the dataset (kept in examples.json) and shows up to {GALLERY_CAP} mistakes per model and angle.</p>\n"
    );
    out.push_str("<noscript><p class=\"note\">The explorer needs JavaScript; the plots above and the CSV files hold the same numbers.</p></noscript>\n</section>\n");

    out.push_str("<section id=\"run\"><h2>Run</h2>\n");
    metadata(&mut out, view, wall_seconds);
    out.push_str("</section>\n</main>\n");
    w!(out, "<footer>Written by rotbench {}. Angles are counter-clockwise about the image centre.</footer>\n", escape(&s.rotbench_version));
    w!(
        out,
        "<script type=\"application/json\" id=\"rb-data\">{}</script>\n",
        json_for_script(&explorer_data(view, frames))
    );
    w!(out, "<script>{JS}</script>\n</body>\n</html>\n");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markup_and_quotes() {
        assert_eq!(
            escape("<script>alert(1)</script>"),
            "&lt;script&gt;alert(1)&lt;/script&gt;"
        );
        assert_eq!(
            escape(r#"a & "b" 'c'"#),
            "a &amp; &quot;b&quot; &#39;c&#39;"
        );
        assert_eq!(escape("plain ünïcode °"), "plain ünïcode °");
    }

    #[test]
    fn script_json_cannot_close_the_script_element() {
        let v = json!({"classes": ["</script><script>alert(1)</script>", "a&b"]});
        let s = json_for_script(&v);
        assert!(
            !s.contains('<') && !s.contains('>') && !s.contains('&'),
            "{s}"
        );
        let back: Value = serde_json::from_str(&s).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn angles_are_described_as_a_range_when_evenly_spaced() {
        let a: Vec<f64> = (0..24).map(|i| i as f64 * 15.0).collect();
        assert_eq!(
            describe_angles(&a),
            "0° to 345° in steps of 15° (24 angles)"
        );
        assert_eq!(describe_angles(&[0.0, 90.0]), "0°, 90° (2 angles)");
        assert_eq!(describe_angles(&[30.0]), "30° (1 angle)");
    }
}
