//! Drawing the screen from an [`App`]: header (capture health, ensemble), sparklines, the
//! main table, the detail and help overlays, the footer. Nothing here changes the state but
//! the number of rows that fit (`App::page`).

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Sparkline};
use ratatui::Frame;
use zkscope_analysis::fmt::{human_us, truncate, truncate_middle};

use super::app::{clock, columns, App, Col, RowView};
use super::model::{View, S};

/// Colours that read on dark and light backgrounds: the terminal's own foreground, reverse
/// video, bold, and red/green only for what they mean.
struct Theme {
    color: bool,
}

impl Theme {
    fn bar(&self) -> Style {
        Style::default().add_modifier(Modifier::REVERSED)
    }
    fn bold(&self) -> Style {
        Style::default().add_modifier(Modifier::BOLD)
    }
    fn dim(&self) -> Style {
        if self.color {
            Style::default().add_modifier(Modifier::DIM)
        } else {
            Style::default()
        }
    }
    fn bad(&self) -> Style {
        if self.color {
            Style::default().fg(Color::Red).add_modifier(Modifier::BOLD)
        } else {
            Style::default().add_modifier(Modifier::BOLD)
        }
    }
    fn good(&self) -> Style {
        if self.color {
            Style::default().fg(Color::Green)
        } else {
            Style::default()
        }
    }
}

/// Draws the whole screen.
pub fn draw(f: &mut Frame<'_>, app: &mut App) {
    let theme = Theme { color: app.color };
    let area = f.area();
    let spark_rows = if area.height >= 40 { 4 } else { 2 };
    let [head, sparks, tabs, table, footer] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Length(spark_rows),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_header(f, app, &theme, head);
    draw_sparks(f, app, &theme, sparks);
    draw_tabs(f, app, &theme, tabs);
    draw_table(f, app, &theme, table);
    draw_footer(f, app, &theme, footer);
    if app.help {
        draw_help(f, &theme, table);
    } else if app.detail {
        draw_detail(f, app, &theme, table);
    }
}

fn draw_header(f: &mut Frame<'_>, app: &App, t: &Theme, area: Rect) {
    let p = &app.data.published;
    let mut title = format!(" zkscope top  {}", app.source);
    if let Some(now) = p.now {
        title.push_str(&format!("  {} UTC", clock(now)));
    }
    title.push_str(&format!("  refresh {}", secs(app.interval_ms())));
    let mut state = String::new();
    if app.paused {
        state.push_str(if app.replay {
            " PAUSED (replay held) "
        } else {
            " PAUSED (capture continues) "
        });
    }
    if p.finished {
        state.push_str(" END OF CAPTURE ");
    }
    let c = &app.data.counters;
    let live = c.live.unwrap_or_default();
    let decode =
        c.client.undecodable_frames + c.client.bad_lengths + c.client.partial_frames_dropped;
    let conns = c
        .tcp
        .flows_opened
        .saturating_sub(c.tcp.flows_closed)
        .saturating_sub(c.tcp.flows_evicted);
    let num = |v: u64| {
        if v > 0 {
            t.bad()
        } else {
            Style::default()
        }
    };
    let health = Line::from(vec![
        Span::raw(" packets "),
        Span::styled(c.packets.packets.to_string(), t.bold()),
        Span::raw("  kernel drops "),
        Span::styled(live.dropped.to_string(), num(live.dropped)),
        Span::raw("  if drops "),
        Span::styled(live.if_dropped.to_string(), num(live.if_dropped)),
        Span::raw("  decode errors "),
        Span::styled(decode.to_string(), num(decode)),
        Span::raw("  tcp gaps "),
        Span::styled(c.tcp.gaps.to_string(), num(c.tcp.gaps)),
        Span::raw(format!("  conns {conns}")),
    ]);
    let e = &p.ensemble;
    let mut ens: Vec<Span<'static>> = vec![Span::raw(" ")];
    if e.servers.is_empty() && e.rounds == 0 {
        let mut s = String::from("servers ");
        if e.client_servers.is_empty() {
            s.push('-');
        }
        for (i, (a, n)) in e.client_servers.iter().enumerate() {
            if i > 0 {
                s.push_str(", ");
            }
            s.push_str(&format!("{a} ({n})"));
        }
        ens.push(Span::raw(s));
        ens.push(Span::styled("  (no election traffic in view)", t.dim()));
    } else {
        if e.electing {
            ens.push(Span::styled("ELECTING ", t.bad()));
        }
        match e.leader {
            Some(l) => ens.push(Span::styled(format!("leader {l}"), t.good())),
            None => ens.push(Span::styled("no leader", t.bad())),
        }
        if let Some(ep) = e.epoch {
            ens.push(Span::raw(format!(" epoch {ep}")));
        }
        let roles: Vec<String> = e
            .servers
            .iter()
            .map(|s| format!("{}:{}", s.sid, s.state))
            .collect();
        if !roles.is_empty() {
            ens.push(Span::raw(format!("  servers {}", roles.join(" "))));
        }
        if let Some((start, took)) = e.last_election {
            let took = took.map_or("not settled".to_string(), |ns| human_us(ns as f64 / 1000.0));
            ens.push(Span::raw(format!(
                "  elections {}, last {} ({took})",
                e.rounds,
                clock(start)
            )));
        }
    }
    let width = usize::from(area.width);
    let mut bar = title;
    let room = width.saturating_sub(state.chars().count());
    bar = truncate(&bar, room);
    let pad = room.saturating_sub(bar.chars().count());
    let bar_line = Line::from(vec![
        Span::styled(format!("{bar}{}", " ".repeat(pad)), t.bar()),
        Span::styled(state, t.bar().add_modifier(Modifier::BOLD)),
    ]);
    f.render_widget(
        Paragraph::new(vec![bar_line, health, Line::from(ens)]),
        area,
    );
}

fn draw_sparks(f: &mut Frame<'_>, app: &App, t: &Theme, area: Rect) {
    let h = &app.data.published.history;
    let span = (WINDOW_SECS).max(1e-9);
    let calls: Vec<u64> = h.iter().map(|p| p.calls).collect();
    let errors: Vec<u64> = h.iter().map(|p| p.errors).collect();
    let p50: Vec<u64> = h.iter().map(|p| p.p50_us.unwrap_or(0)).collect();
    let p99: Vec<u64> = h.iter().map(|p| p.p99_us.unwrap_or(0)).collect();
    let last = h.back();
    let rate = |v: Option<u64>| v.map_or("-".to_string(), |v| rate_text(v as f64 / span));
    let lat = |v: Option<u64>| v.map_or("-".to_string(), |v| human_us(v as f64));
    let items = [
        ("req/s", rate(last.map(|p| p.calls)), calls, t.good()),
        ("err/s", rate(last.map(|p| p.errors)), errors, t.bad()),
        (
            "p50",
            lat(last.and_then(|p| p.p50_us)),
            p50,
            Style::default(),
        ),
        (
            "p99",
            lat(last.and_then(|p| p.p99_us)),
            p99,
            Style::default(),
        ),
    ];
    let cells: Vec<Rect> = if area.height >= 4 {
        Layout::vertical([Constraint::Length(1); 4])
            .split(area)
            .to_vec()
    } else {
        let rows = Layout::vertical([Constraint::Length(1); 2]).split(area);
        rows.iter()
            .flat_map(|r| {
                Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)])
                    .split(*r)
                    .to_vec()
            })
            .collect()
    };
    for ((label, now, data, style), cell) in items.into_iter().zip(cells) {
        let [l, s] = Layout::horizontal([Constraint::Length(16), Constraint::Min(1)]).areas(cell);
        f.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled(format!(" {label:<6}"), t.bold()),
                Span::raw(format!("{now:>8} ")),
            ])),
            l,
        );
        let w = usize::from(s.width.saturating_sub(1));
        let tail = &data[data.len().saturating_sub(w)..];
        f.render_widget(Sparkline::default().data(tail).style(style), s);
    }
}

/// Seconds per window (sparkline points are windows).
const WINDOW_SECS: f64 = (super::model::WINDOW_NS / S) as f64;

fn draw_tabs(f: &mut Frame<'_>, app: &App, t: &Theme, area: Rect) {
    let mut spans: Vec<Span<'static>> = vec![Span::raw(" ")];
    let filtering = app.editing || !app.filter.is_empty();
    // Every tab when there is room; else the current one and the keys.
    if area.width >= 110 || (area.width >= 80 && !filtering) {
        for v in View::ALL {
            let title = v.title();
            let text = format!("[{}]{}", &title[..1], &title[1..]);
            if v == app.view {
                spans.push(Span::styled(text, t.bar()));
            } else {
                spans.push(Span::raw(text));
            }
            spans.push(Span::raw(" "));
        }
    } else {
        spans.push(Span::styled(app.view.title().to_string(), t.bar()));
        spans.push(Span::raw(" (o p c s e w) "));
    }
    spans.push(Span::styled(
        if app.cumulative {
            "| calls/s; since start "
        } else {
            "| calls/s; last 10s "
        },
        t.dim(),
    ));
    if filtering {
        let cursor = if app.editing { "_" } else { "" };
        spans.push(Span::styled(
            format!("| /{}{cursor} ", app.filter),
            t.bold(),
        ));
        spans.push(Span::raw(format!(
            "({} of {})",
            app.rows.len(),
            app.unfiltered
        )));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// How much a column is worth keeping on a narrow screen (dropped lowest first).
fn priority(c: Col) -> u8 {
    match c {
        Col::Key(0) => 100,
        Col::Key(_) => 85,
        Col::R10 => 90,
        Col::Calls => 80,
        Col::Errors => 75,
        Col::P99 => 60,
        Col::R2 => 50,
        Col::P50 => 40,
        // What the sessions view is for: before the 2 s rate and the median.
        Col::Pending => 56,
        Col::Timeout => 54,
        Col::LastOp => 52,
        Col::R40 => 30,
        Col::Client => 15,
    }
}

fn width_of(c: Col) -> usize {
    match c {
        Col::Key(_) => 12,
        Col::R2 | Col::R10 | Col::R40 => 7,
        Col::Calls => 8,
        Col::Errors => 6,
        Col::P50 | Col::P99 => 8,
        Col::Client => 21,
        Col::Timeout => 8,
        Col::Pending => 5,
        Col::LastOp => 13,
    }
}

/// Columns that fit in `width`, with their widths (key columns take what is left).
pub fn fit(view: View, rows: &[RowView], width: usize) -> Vec<(Col, usize)> {
    let mut cols = columns(view);
    let keys = view.key_titles().len();
    let want = |i: usize| -> usize {
        rows.iter()
            .map(|r| r.keys.get(i).map_or(0, |k| k.chars().count()))
            .max()
            .unwrap_or(0)
            .clamp(width_of(Col::Key(i)), 64)
    };
    loop {
        let fixed: usize = cols
            .iter()
            .filter(|c| !matches!(c, Col::Key(_)))
            .map(|c| width_of(*c) + 1)
            .sum();
        // Keys whole up to 24 characters: columns go before keys are cut.
        let key_min: usize = cols
            .iter()
            .filter_map(|c| match c {
                Col::Key(i) => Some(want(*i).min(24) + 1),
                _ => None,
            })
            .sum();
        if fixed + key_min <= width || cols.len() <= keys {
            let mut left = width.saturating_sub(fixed);
            let mut out = Vec::new();
            let nkeys = cols.iter().filter(|c| matches!(c, Col::Key(_))).count();
            let mut keys_left = nkeys;
            for c in &cols {
                let w = match c {
                    Col::Key(i) => {
                        keys_left -= 1;
                        // What the keys need, within what the other columns leave.
                        let rest_min: usize = (0..keys_left).map(|_| 13).sum();
                        let w = want(*i).min(left.saturating_sub(rest_min + 1));
                        left = left.saturating_sub(w + 1);
                        w.max(1)
                    }
                    c => width_of(*c),
                };
                out.push((*c, w));
            }
            return out;
        }
        // Drop the least useful non-key column.
        if let Some((i, _)) = cols
            .iter()
            .enumerate()
            .filter(|(_, c)| !matches!(c, Col::Key(_)))
            .min_by_key(|(_, c)| priority(**c))
        {
            cols.remove(i);
        } else {
            break;
        }
    }
    cols.into_iter().map(|c| (c, width_of(c))).collect()
}

fn cell(r: &RowView, c: Col, cumulative: bool) -> String {
    let s = r.session.as_ref();
    match c {
        Col::Key(i) => r.keys.get(i).cloned().unwrap_or_default(),
        Col::R2 => rate_text(r.rates[0]),
        Col::R10 => rate_text(r.rates[1]),
        Col::R40 => rate_text(r.rates[2]),
        Col::Calls => r.calls(cumulative).to_string(),
        Col::Errors => r.errors(cumulative).to_string(),
        Col::P50 => r.p50_us.map_or("-".into(), |v| human_us(v as f64)),
        Col::P99 => r.p99_us.map_or("-".into(), |v| human_us(v as f64)),
        Col::Client => s.map_or("-".into(), |s| s.client.to_string()),
        Col::Timeout => s
            .and_then(|s| s.timeout_ms)
            .map_or("-".into(), |ms| format!("{}s", ms as f64 / 1000.0)),
        Col::Pending => s.map_or("-".into(), |s| s.pending.to_string()),
        Col::LastOp => s.map_or("-".into(), |s| {
            if s.closed {
                "(closed)".into()
            } else {
                s.last_op.to_string()
            }
        }),
    }
}

/// A rate with 3 significant figures: `0.5`, `12.5`, `1.2k`.
pub fn rate_text(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v < 10.0 {
        format!("{v:.1}")
    } else if v < 10_000.0 {
        format!("{v:.0}")
    } else if v < 10_000_000.0 {
        format!("{:.1}k", v / 1e3)
    } else {
        format!("{:.1}M", v / 1e6)
    }
}

fn pad(s: &str, w: usize, right: bool) -> String {
    let s = if right {
        truncate(s, w)
    } else {
        truncate_middle(s, w)
    };
    let n = s.chars().count();
    let fill = " ".repeat(w.saturating_sub(n));
    if right {
        format!("{fill}{s}")
    } else {
        format!("{s}{fill}")
    }
}

fn row_line(r: &RowView, cols: &[(Col, usize)], cumulative: bool, t: &Theme) -> Line<'static> {
    let mut spans = Vec::with_capacity(cols.len() * 2);
    for (c, w) in cols {
        let text = cell(r, *c, cumulative);
        let right = !matches!(c, Col::Key(_) | Col::Client | Col::LastOp);
        let style = match c {
            Col::Errors if r.errors(cumulative) > 0 => t.bad(),
            _ => Style::default(),
        };
        spans.push(Span::styled(pad(&text, *w, right), style));
        spans.push(Span::raw(" "));
    }
    Line::from(spans)
}

fn draw_table(f: &mut Frame<'_>, app: &mut App, t: &Theme, area: Rect) {
    let width = usize::from(area.width);
    let cols = fit(app.view, &app.rows, width.saturating_sub(1));
    let sort = app.sort_col();
    let mut header: Vec<Span<'static>> = vec![Span::raw(" ")];
    for (c, w) in &cols {
        let mut title = c.title(app.view, app.cumulative).to_string();
        if *c == sort {
            title.push(if app.invert { '▲' } else { '▼' });
        }
        let right = !matches!(c, Col::Key(_) | Col::Client | Col::LastOp);
        header.push(Span::styled(pad(&title, *w, right), t.bold()));
        header.push(Span::raw(" "));
    }
    let body = usize::from(area.height).saturating_sub(2);
    app.page = body.max(1);
    let sel = app.selected_index();
    if let Some(i) = sel {
        // Keep the selection visible after a resize.
        if i >= app.scroll + app.page {
            app.scroll = i + 1 - app.page;
        }
    }
    app.scroll = app.scroll.min(app.rows.len().saturating_sub(1));
    let mut lines = vec![Line::from(header).style(t.bar())];
    for (i, r) in app.rows.iter().enumerate().skip(app.scroll).take(body) {
        let mut l = row_line(r, &cols, app.cumulative, t);
        l.spans
            .insert(0, Span::raw(if Some(i) == sel { ">" } else { " " }));
        if Some(i) == sel {
            l = l.style(Style::default().add_modifier(Modifier::REVERSED));
        }
        lines.push(l);
    }
    if app.rows.is_empty() {
        let msg = if app.unfiltered > 0 {
            " no row matches the filter (Esc clears it)"
        } else {
            " no calls yet"
        };
        lines.push(Line::styled(msg, t.dim()));
    }
    while lines.len() < usize::from(area.height).saturating_sub(1) {
        lines.push(Line::raw(""));
    }
    let mut tot = row_line(&app.total, &cols, app.cumulative, t);
    tot.spans.insert(0, Span::raw(" "));
    lines.push(tot.style(t.bold()));
    f.render_widget(Paragraph::new(lines), area);
}

fn draw_footer(f: &mut Frame<'_>, app: &App, t: &Theme, area: Rect) {
    let items: Vec<(String, &str)> = vec![
        ("q".into(), "quit"),
        ("?".into(), "help"),
        ("o p c s e w".into(), "view"),
        ("< >".into(), "sort"),
        ("i".into(), "invert"),
        ("/".into(), "filter"),
        ("Enter".into(), "detail"),
        ("Space".into(), if app.paused { "resume" } else { "pause" }),
        ("+ -".into(), "refresh"),
        (
            "t".into(),
            if app.cumulative { "last 10s" } else { "total" },
        ),
    ];
    let width = usize::from(area.width);
    let mut used = 0;
    let mut spans = Vec::new();
    for (k, what) in items {
        let n = k.chars().count() + what.len() + 3;
        if used + n > width {
            break;
        }
        used += n;
        spans.push(Span::styled(format!(" {k}"), t.bar()));
        spans.push(Span::raw(format!(" {what} ")));
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

/// A box in the middle of `area`.
fn overlay(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// The help text.
pub const HELP: &[(&str, &str)] = &[
    (
        "o p c s e w",
        "ops, paths, clients, sessions, errors, watches",
    ),
    ("Tab S-Tab", "next / previous view"),
    ("< > (← →)", "sort by the previous / next column"),
    ("1 2 3", "sort by the 2s / 10s / 40s rate"),
    ("n E l a", "sort by calls / errors / p99 / key"),
    ("i", "invert the order"),
    ("/", "filter rows (regex, !regex: the others); Esc clears"),
    ("↑ ↓ PgUp PgDn", "select a row (j k, g G)"),
    ("Enter", "detail of the row; Esc closes"),
    ("Space", "pause the display (a replay waits)"),
    ("+ -", "refresh interval"),
    ("t", "counts of the last 10s / since the start"),
    ("q Ctrl-C", "quit"),
];

fn draw_help(f: &mut Frame<'_>, t: &Theme, area: Rect) {
    let r = overlay(area, 72, HELP.len() as u16 + 4);
    let mut lines: Vec<Line<'static>> = HELP
        .iter()
        .map(|(k, what)| {
            Line::from(vec![
                Span::styled(format!(" {k:<15}"), t.bold()),
                Span::raw((*what).to_string()),
            ])
        })
        .collect();
    lines.push(Line::styled(
        " rates: calls/s over 2s, 10s, 40s; P50/P99: last 10s",
        t.dim(),
    ));
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" help (any key closes) "),
        ),
        r,
    );
}

fn draw_detail(f: &mut Frame<'_>, app: &App, t: &Theme, area: Rect) {
    let Some(d) = app.detail() else {
        return;
    };
    let r = overlay(area, area.width.saturating_sub(4).max(20), area.height);
    let inner_w = usize::from(r.width.saturating_sub(2));
    let mut lines: Vec<Line<'static>> = Vec::new();
    let row = &d.row;
    lines.push(Line::from(vec![
        Span::styled(" calls/s ", t.bold()),
        Span::raw(format!(
            "{} (2s) {} (10s) {} (40s)",
            rate_text(row.rates[0]),
            rate_text(row.rates[1]),
            rate_text(row.rates[2]),
        )),
    ]));
    lines.push(Line::raw(format!(
        " last 10s {} calls, {} errors; since the start {} calls, {} errors",
        row.recent, row.recent_errors, row.total, row.total_errors
    )));
    let max = d
        .histogram
        .iter()
        .map(|(_, n)| *n)
        .max()
        .unwrap_or(0)
        .max(1);
    lines.push(Line::styled(" latency, last 40s", t.bold()));
    if d.histogram.is_empty() {
        lines.push(Line::raw("   no answered calls"));
    }
    let bar_w = inner_w.saturating_sub(24).clamp(1, 50);
    for (b, n) in &d.histogram {
        let label = if *b == u64::MAX {
            "  > 1s".to_string()
        } else {
            format!("≤ {}", human_us(*b as f64))
        };
        let len = ((*n as f64 / max as f64) * bar_w as f64).ceil() as usize;
        lines.push(Line::from(vec![
            Span::raw(format!("   {label:>9} {n:>7} ")),
            Span::styled("█".repeat(len), t.good()),
        ]));
    }
    if app.view != View::Clients {
        lines.push(Line::styled(" top clients (since start)", t.bold()));
        if d.clients.is_empty() {
            lines.push(Line::raw("   -"));
        }
        for (c, n) in d.clients.iter().take(5) {
            lines.push(Line::raw(format!("   {c:<40} {n:>8}")));
        }
    }
    lines.push(Line::styled(
        " slowest recent calls (one per 2s window)",
        t.bold(),
    ));
    if d.slow.is_empty() {
        lines.push(Line::raw("   -"));
    }
    for s in &d.slow {
        let err = if &*s.err == "OK" {
            Span::raw(format!(" {}", s.err))
        } else {
            Span::styled(format!(" {}", s.err), t.bad())
        };
        lines.push(Line::from(vec![
            Span::raw(format!(
                "   {} {:>9} {:<12} {} {}",
                clock(s.end),
                human_us(s.latency_ns as f64 / 1000.0),
                s.op,
                s.client,
                s.path
            )),
            err,
        ]));
    }
    let title = format!(" {} {} (Esc closes) ", app.view.title(), row.keys.join(" "));
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(truncate(&title, inner_w)),
        ),
        r,
    );
}

fn secs(ms: u64) -> String {
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{}s", ms as f64 / 1000.0)
    }
}
