//! The screen's state and its keys, apart from drawing: what is shown (view, sort, filter,
//! selection, detail, pause, refresh interval) and the rows computed from the capture thread's
//! publications. Tests drive it with scripted keys.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use regex::{Regex, RegexBuilder};
use zkscope_analysis::window::Snapshot;
use zkscope_analysis::LatencyStats;
use zkscope_capture::pipeline::Counters;
use zkscope_capture::Timestamp;

use super::model::{Published, Session, SlowCall, Stat, TopAgg, View, KEY_SEP, OTHER, S};

/// Refresh intervals `+`/`-` step through (ms).
pub const INTERVALS_MS: [u64; 7] = [250, 500, 1000, 2000, 3000, 5000, 10_000];

/// A key press, independent of the terminal library.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Enter.
    Enter,
    /// Escape.
    Esc,
    /// Backspace.
    Backspace,
    /// Arrows.
    Up,
    /// Arrows.
    Down,
    /// Arrows.
    Left,
    /// Arrows.
    Right,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Home.
    Home,
    /// End.
    End,
    /// Tab.
    Tab,
    /// Shift-Tab.
    BackTab,
    /// Ctrl-C.
    Interrupt,
}

/// A column of the main table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// The i-th key column.
    Key(usize),
    /// Calls per second over the last window (2 s).
    R2,
    /// … over the last 10 s.
    R10,
    /// … over the last 40 s.
    R40,
    /// Calls in the last 10 s, or since the start (cumulative mode).
    Calls,
    /// Error replies, same span as [`Col::Calls`].
    Errors,
    /// Median latency over the last 10 s.
    P50,
    /// 99th percentile over the last 10 s.
    P99,
    /// Sessions: the client.
    Client,
    /// Sessions: negotiated timeout.
    Timeout,
    /// Sessions: pending requests.
    Pending,
    /// Sessions: last operation.
    LastOp,
}

impl Col {
    /// The header.
    pub fn title(self, view: View, cumulative: bool) -> &'static str {
        match self {
            Col::Key(i) => view.key_titles().get(i).copied().unwrap_or(""),
            Col::R2 => "2s",
            Col::R10 => "10s",
            Col::R40 => "40s",
            Col::Calls if cumulative => "TOTAL",
            Col::Calls => "CALLS",
            Col::Errors => "ERR",
            Col::P50 => "P50",
            Col::P99 => "P99",
            Col::Client => "CLIENT",
            Col::Timeout => "TIMEOUT",
            Col::Pending => "PEND",
            Col::LastOp => "LAST OP",
        }
    }

    /// Numbers sort descending, text ascending.
    fn numeric(self) -> bool {
        !matches!(self, Col::Key(_) | Col::Client | Col::LastOp)
    }
}

/// The columns of a view, in order.
pub fn columns(view: View) -> Vec<Col> {
    let mut cols: Vec<Col> = (0..view.key_titles().len()).map(Col::Key).collect();
    cols.extend([
        Col::R2,
        Col::R10,
        Col::R40,
        Col::Calls,
        Col::Errors,
        Col::P50,
        Col::P99,
    ]);
    if view == View::Sessions {
        cols.extend([Col::Client, Col::Timeout, Col::Pending, Col::LastOp]);
    }
    cols
}

/// One row as shown.
#[derive(Debug, Clone, Default)]
pub struct RowView {
    /// The whole key.
    pub key: String,
    /// Its columns.
    pub keys: Vec<String>,
    /// Calls per second over 2 s, 10 s, 40 s.
    pub rates: [f64; 3],
    /// Calls in the last 10 s.
    pub recent: u64,
    /// Error replies in the last 10 s.
    pub recent_errors: u64,
    /// Calls since the start.
    pub total: u64,
    /// Error replies since the start.
    pub total_errors: u64,
    /// Median over the last 10 s (µs).
    pub p50_us: Option<u64>,
    /// 99th percentile over the last 10 s (µs).
    pub p99_us: Option<u64>,
    /// The session's state (sessions view).
    pub session: Option<Session>,
    /// The `(other)` row.
    pub other: bool,
}

impl RowView {
    /// Calls of the CALLS column.
    pub fn calls(&self, cumulative: bool) -> u64 {
        if cumulative {
            self.total
        } else {
            self.recent
        }
    }
    /// Errors of the ERR column.
    pub fn errors(&self, cumulative: bool) -> u64 {
        if cumulative {
            self.total_errors
        } else {
            self.recent_errors
        }
    }
}

/// What the capture thread has published, as of the last refresh.
#[derive(Debug, Clone, Default)]
pub struct Data {
    /// The windows.
    pub windows: Snapshot<TopAgg>,
    /// Counts since the start, sessions, ensemble, history.
    pub published: Published,
    /// Capture counters.
    pub counters: Counters,
}

/// The detail of a row.
#[derive(Debug, Clone, Default)]
pub struct Detail {
    /// The row.
    pub row: RowView,
    /// Latencies over the last 40 s: `(upper bound in µs, calls)` by power-of-ten-ish bins.
    pub histogram: Vec<(u64, u64)>,
    /// Heaviest client addresses since the start.
    pub clients: Vec<(IpAddr, u64)>,
    /// Slowest call of each recent window, slowest first.
    pub slow: Vec<SlowCall>,
}

/// The screen's state.
pub struct App {
    /// Shown table.
    pub view: View,
    /// Sort column per view.
    sort: HashMap<View, Col>,
    /// Ascending instead of the column's natural order.
    pub invert: bool,
    /// The row filter (`/`).
    pub filter: String,
    /// The filter's regex, and whether it keeps the rows that do not match (`!…`).
    filter_re: Option<(Regex, bool)>,
    /// Typing the filter.
    pub editing: bool,
    /// Selected row (by key, so that it survives re-sorting).
    pub selected: Option<String>,
    /// First row shown.
    pub scroll: usize,
    /// Rows that fit on screen (set by the drawing).
    pub page: usize,
    /// The detail of the selected row is open.
    pub detail: bool,
    /// The display is frozen (a replay is held too).
    pub paused: bool,
    /// Index into [`INTERVALS_MS`].
    pub interval: usize,
    /// Counts since the start instead of the last 10 s.
    pub cumulative: bool,
    /// The help screen.
    pub help: bool,
    /// `q` was pressed.
    pub quit: bool,
    /// Colours.
    pub color: bool,
    /// What is read.
    pub source: String,
    /// A replay (Space holds it).
    pub replay: bool,
    /// Shared with the replay's pacer.
    pub hold: Arc<AtomicBool>,
    /// The data shown.
    pub data: Data,
    /// The rows of the view, filtered and sorted (recomputed on refresh and keys).
    pub rows: Vec<RowView>,
    /// Every row of the view added up (the filter leaves it alone).
    pub total: RowView,
    /// Rows before the filter.
    pub unfiltered: usize,
}

impl App {
    /// A screen on `source`, showing `view` first.
    pub fn new(source: String, view: View, color: bool, replay: bool) -> Self {
        App {
            view,
            sort: HashMap::new(),
            invert: false,
            filter: String::new(),
            filter_re: None,
            editing: false,
            selected: None,
            scroll: 0,
            page: 10,
            detail: false,
            paused: false,
            interval: 3,
            cumulative: false,
            help: false,
            quit: false,
            color,
            source,
            replay,
            hold: Arc::default(),
            data: Data::default(),
            rows: Vec::new(),
            total: RowView::default(),
            unfiltered: 0,
        }
    }

    /// The refresh interval.
    pub fn interval_ms(&self) -> u64 {
        INTERVALS_MS.get(self.interval).copied().unwrap_or(2000)
    }

    /// The sort column of the current view.
    pub fn sort_col(&self) -> Col {
        self.sort.get(&self.view).copied().unwrap_or(Col::R10)
    }

    /// New data (ignored while paused).
    pub fn update(&mut self, data: Data) {
        if self.paused {
            return;
        }
        self.data = data;
        self.rebuild();
    }

    /// Recomputes the rows from the data.
    pub fn rebuild(&mut self) {
        let (rows, total) = build_rows(self.view, &self.data);
        self.unfiltered = rows.len();
        self.total = total;
        let mut rows: Vec<RowView> = rows
            .into_iter()
            .filter(|r| {
                self.filter_re
                    .as_ref()
                    .is_none_or(|(re, not)| re.is_match(&r.key) != *not)
            })
            .collect();
        sort(&mut rows, self.sort_col(), self.invert, self.cumulative);
        self.rows = rows;
        // Keep the selection on its key; else the first row.
        let pos = self
            .selected
            .as_ref()
            .and_then(|k| self.rows.iter().position(|r| &r.key == k));
        match pos {
            Some(i) => self.keep_visible(i),
            None => {
                self.selected = self.rows.first().map(|r| r.key.clone());
                self.scroll = 0;
                if self.rows.is_empty() {
                    self.detail = false;
                }
            }
        }
    }

    /// Index of the selected row.
    pub fn selected_index(&self) -> Option<usize> {
        let k = self.selected.as_ref()?;
        self.rows.iter().position(|r| &r.key == k)
    }

    fn keep_visible(&mut self, i: usize) {
        let page = self.page.max(1);
        if i < self.scroll {
            self.scroll = i;
        } else if i >= self.scroll + page {
            self.scroll = i + 1 - page;
        }
    }

    fn select(&mut self, i: usize) {
        if self.rows.is_empty() {
            return;
        }
        let i = i.min(self.rows.len() - 1);
        self.selected = self.rows.get(i).map(|r| r.key.clone());
        self.keep_visible(i);
    }

    fn move_by(&mut self, d: isize) {
        let cur = self.selected_index().unwrap_or(0) as isize;
        self.select(cur.saturating_add(d).max(0) as usize);
    }

    fn set_filter(&mut self, f: String) {
        let (not, pattern) = match f.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, f.as_str()),
        };
        self.filter_re = (!pattern.is_empty()).then(|| {
            let re = RegexBuilder::new(pattern)
                .case_insensitive(true)
                .build()
                .unwrap_or_else(|_| {
                    // Not a regex: the literal text.
                    RegexBuilder::new(&regex::escape(pattern))
                        .case_insensitive(true)
                        .build()
                        .unwrap_or_else(|_| unreachable!("an escaped literal is a regex"))
                });
            (re, not)
        });
        self.filter = f;
        self.rebuild();
    }

    fn set_view(&mut self, v: View) {
        if self.view != v {
            self.view = v;
            self.selected = None;
            self.scroll = 0;
            self.detail = false;
            self.rebuild();
        }
    }

    fn shift_sort(&mut self, d: isize) {
        let cols = columns(self.view);
        let cur = cols.iter().position(|c| *c == self.sort_col()).unwrap_or(0) as isize;
        let n = cols.len() as isize;
        let next = (cur + d).rem_euclid(n) as usize;
        if let Some(c) = cols.get(next) {
            self.sort.insert(self.view, *c);
        }
        self.rebuild();
    }

    fn set_sort(&mut self, c: Col) {
        self.sort.insert(self.view, c);
        self.rebuild();
    }

    /// One key press.
    pub fn key(&mut self, k: Key) {
        if k == Key::Interrupt {
            self.quit = true;
            return;
        }
        if self.editing {
            match k {
                Key::Enter => self.editing = false,
                Key::Esc => {
                    self.editing = false;
                    self.set_filter(String::new());
                }
                Key::Backspace => {
                    let mut f = self.filter.clone();
                    f.pop();
                    self.set_filter(f);
                }
                Key::Char(c) => {
                    let mut f = self.filter.clone();
                    f.push(c);
                    self.set_filter(f);
                }
                _ => {}
            }
            return;
        }
        if self.help {
            // Any key closes the help; q still quits.
            self.help = false;
            if k == Key::Char('q') {
                self.quit = true;
            }
            return;
        }
        match k {
            Key::Char('q') => self.quit = true,
            Key::Char('?') | Key::Char('h') => self.help = true,
            Key::Char(' ') => {
                self.paused = !self.paused;
                if self.replay {
                    self.hold.store(self.paused, Ordering::Relaxed);
                }
            }
            Key::Char('+') | Key::Char('=') => {
                self.interval = (self.interval + 1).min(INTERVALS_MS.len() - 1)
            }
            Key::Char('-') => self.interval = self.interval.saturating_sub(1),
            Key::Char('/') => {
                self.editing = true;
                self.detail = false;
            }
            Key::Esc if self.detail => self.detail = false,
            Key::Esc => self.set_filter(String::new()),
            Key::Enter if !self.rows.is_empty() => self.detail = !self.detail,
            Key::Char('t') => {
                self.cumulative = !self.cumulative;
                self.rebuild();
            }
            Key::Char('<') | Key::Char(',') | Key::Left => self.shift_sort(-1),
            Key::Char('>') | Key::Char('.') | Key::Right => self.shift_sort(1),
            Key::Char('i') | Key::Char('I') | Key::Char('r') => {
                self.invert = !self.invert;
                self.rebuild();
            }
            Key::Char('1') => self.set_sort(Col::R2),
            Key::Char('2') => self.set_sort(Col::R10),
            Key::Char('3') => self.set_sort(Col::R40),
            Key::Char('n') => self.set_sort(Col::Calls),
            Key::Char('E') => self.set_sort(Col::Errors),
            Key::Char('l') => self.set_sort(Col::P99),
            Key::Char('a') => self.set_sort(Col::Key(0)),
            Key::Tab => {
                let i = (self.view.index() + 1) % View::ALL.len();
                self.set_view(View::ALL[i]);
            }
            Key::BackTab => {
                let i = (self.view.index() + View::ALL.len() - 1) % View::ALL.len();
                self.set_view(View::ALL[i]);
            }
            Key::Char(c) if View::ALL.iter().any(|v| v.key() == c) => {
                if let Some(v) = View::ALL.iter().find(|v| v.key() == c) {
                    self.set_view(*v);
                }
            }
            Key::Up | Key::Char('k') => self.move_by(-1),
            Key::Down | Key::Char('j') => self.move_by(1),
            Key::PageUp => self.move_by(-(self.page.max(1) as isize)),
            Key::PageDown => self.move_by(self.page.max(1) as isize),
            Key::Home | Key::Char('g') => self.select(0),
            Key::End | Key::Char('G') => self.select(usize::MAX),
            _ => {}
        }
    }

    /// The detail of the selected row.
    pub fn detail(&self) -> Option<Detail> {
        let i = self.selected_index()?;
        let row = self.rows.get(i)?.clone();
        let idx = self.view.index();
        let mut lat = LatencyStats::new();
        let mut slow: Vec<SlowCall> = Vec::new();
        let windows = self
            .data
            .windows
            .closed
            .iter()
            .chain(&self.data.windows.partial);
        for w in windows {
            let Some(t) = w.agg.tables.get(idx) else {
                continue;
            };
            let stat = if row.other {
                Some(&t.other)
            } else {
                t.rows.get(row.key.as_str())
            };
            if let Some(s) = stat {
                lat.merge(&s.latency);
                slow.extend(s.slowest.as_deref().cloned());
            }
        }
        slow.sort_by(|a, b| b.latency_ns.cmp(&a.latency_ns).then(b.end.cmp(&a.end)));
        slow.dedup();
        slow.truncate(8);
        let mut clients: Vec<(IpAddr, u64)> = Vec::new();
        let mut add = |s: &Stat| {
            for (c, n) in &s.clients {
                match clients.iter_mut().find(|(k, _)| k == c) {
                    Some(e) => e.1 += n,
                    None => clients.push((*c, *n)),
                }
            }
        };
        let cum = self.data.published.cumulative.as_deref();
        let part = self.data.windows.partial.as_deref().map(|w| &w.agg);
        for agg in cum.into_iter().chain(part) {
            if let Some(t) = agg.tables.get(idx) {
                let s = if row.other {
                    Some(&t.other)
                } else {
                    t.rows.get(row.key.as_str())
                };
                if let Some(s) = s {
                    add(s);
                }
            }
        }
        clients.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Some(Detail {
            row,
            histogram: histogram(&lat),
            clients,
            slow,
        })
    }
}

/// Upper bounds of the detail's latency bins (µs).
const BINS_US: [u64; 12] = [
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    100_000,
    250_000,
    1_000_000,
    u64::MAX,
];

fn histogram(l: &LatencyStats) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = BINS_US.iter().map(|b| (*b, 0)).collect();
    for (v, n) in l.buckets() {
        if let Some(bin) = out.iter_mut().find(|(b, _)| v <= *b) {
            bin.1 += n;
        }
    }
    // Only the span that has calls.
    let first = out.iter().position(|(_, n)| *n > 0);
    let last = out.iter().rposition(|(_, n)| *n > 0);
    match (first, last) {
        (Some(a), Some(b)) => out[a..=b].to_vec(),
        _ => Vec::new(),
    }
}

#[derive(Default)]
struct Acc {
    c2: u64,
    c10: u64,
    c40: u64,
    e10: u64,
    lat10: LatencyStats,
    total: u64,
    total_errors: u64,
}

/// The rows of `view` and their total.
pub fn build_rows(view: View, data: &Data) -> (Vec<RowView>, RowView) {
    let idx = view.index();
    let closed = &data.windows.closed;
    let n = closed.len();
    let span = |k: usize| -> f64 {
        let ns: i64 = closed
            .iter()
            .skip(n.saturating_sub(k))
            .map(|w| (w.end.0 - w.start.0).max(0))
            .sum();
        (ns as f64 / S as f64).max(1e-3)
    };
    let spans = [span(1), span(5), span(20)];
    let mut accs: HashMap<&str, Acc> = HashMap::new();
    let mut other = Acc::default();
    let mut total = Acc::default();
    for (age, w) in closed.iter().rev().enumerate().take(20) {
        let Some(t) = w.agg.tables.get(idx) else {
            continue;
        };
        let entries = t
            .rows
            .iter()
            .map(|(k, s)| (Some(&**k), s))
            .chain(std::iter::once((None, &t.other)));
        for (k, s) in entries {
            if s.count == 0 {
                continue;
            }
            let a = match k {
                Some(k) => accs.entry(k).or_default(),
                None => &mut other,
            };
            add_window(a, s, age);
        }
        let tot = view_total(&w.agg, view);
        add_window(&mut total, &tot, age);
    }
    let cum = data.published.cumulative.as_deref();
    let part = data.windows.partial.as_deref().map(|w| &w.agg);
    for agg in cum.into_iter().chain(part) {
        let Some(t) = agg.tables.get(idx) else {
            continue;
        };
        for (k, s) in &t.rows {
            let a = accs.entry(&**k).or_default();
            a.total += s.count;
            a.total_errors += s.errors;
        }
        other.total += t.other.count;
        other.total_errors += t.other.errors;
        let tot = view_total(agg, view);
        total.total += tot.count;
        total.total_errors += tot.errors;
    }
    let sessions = &data.published.sessions;
    let mut rows: Vec<RowView> = accs
        .into_iter()
        .map(|(k, a)| row_view(k, &a, spans, false))
        .collect();
    if view == View::Sessions {
        // Sessions with no call counted yet (or only long ago) have a row too.
        let mut have: std::collections::HashSet<String> =
            rows.iter().map(|r| r.key.clone()).collect();
        for (id, s) in sessions.iter() {
            let key = format!("{id:#x}");
            if have.insert(key.clone()) {
                let mut r = row_view(&key, &Acc::default(), spans, false);
                r.session = Some(s.clone());
                rows.push(r);
            }
        }
        for r in &mut rows {
            if r.session.is_none() {
                if let Some(id) = parse_session(&r.key) {
                    r.session = sessions.get(&id).cloned();
                }
            }
        }
    }
    if other.c40 > 0 || other.total > 0 {
        rows.push(row_view(OTHER, &other, spans, true));
    }
    let total = row_view("total", &total, spans, false);
    (rows, total)
}

/// The total of a view: the main total, or for tables that take only some calls, their sum.
fn view_total(agg: &TopAgg, view: View) -> Stat {
    match view {
        View::Ops | View::Clients => agg.total.clone(),
        _ => {
            let mut s = Stat::default();
            if let Some(t) = agg.tables.get(view.index()) {
                for r in t.rows.values().chain(std::iter::once(&t.other)) {
                    s.count += r.count;
                    s.errors += r.errors;
                    s.no_reply += r.no_reply;
                    s.latency.merge(&r.latency);
                }
            }
            s
        }
    }
}

fn add_window(a: &mut Acc, s: &Stat, age: usize) {
    if age < 1 {
        a.c2 += s.count;
    }
    if age < 5 {
        a.c10 += s.count;
        a.e10 += s.errors;
        a.lat10.merge(&s.latency);
    }
    a.c40 += s.count;
}

fn row_view(key: &str, a: &Acc, spans: [f64; 3], other: bool) -> RowView {
    let [p50, p99] = a.lat10.quantiles_us([0.5, 0.99]);
    RowView {
        key: key.to_string(),
        keys: key.split(KEY_SEP).map(str::to_string).collect(),
        rates: [
            a.c2 as f64 / spans[0],
            a.c10 as f64 / spans[1],
            a.c40 as f64 / spans[2],
        ],
        recent: a.c10,
        recent_errors: a.e10,
        total: a.total,
        total_errors: a.total_errors,
        p50_us: p50,
        p99_us: p99,
        session: None,
        other,
    }
}

fn parse_session(k: &str) -> Option<i64> {
    let hex = k.strip_prefix("0x")?;
    u64::from_str_radix(hex, 16).ok().map(|v| v as i64)
}

fn sort(rows: &mut [RowView], col: Col, invert: bool, cumulative: bool) {
    let num = |r: &RowView| -> Option<f64> {
        let s = r.session.as_ref();
        match col {
            Col::R2 => Some(r.rates[0]),
            Col::R10 => Some(r.rates[1]),
            Col::R40 => Some(r.rates[2]),
            Col::Calls => Some(r.calls(cumulative) as f64),
            Col::Errors => Some(r.errors(cumulative) as f64),
            Col::P50 => r.p50_us.map(|v| v as f64),
            Col::P99 => r.p99_us.map(|v| v as f64),
            Col::Timeout => s.and_then(|s| s.timeout_ms).map(f64::from),
            Col::Pending => s.map(|s| f64::from(s.pending)),
            Col::Key(_) | Col::Client | Col::LastOp => None,
        }
    };
    let text = |r: &RowView| -> String {
        match col {
            Col::Key(i) => r.keys.get(i).cloned().unwrap_or_default(),
            Col::Client => r
                .session
                .as_ref()
                .map(|s| s.client.to_string())
                .unwrap_or_default(),
            Col::LastOp => r
                .session
                .as_ref()
                .map(|s| s.last_op.to_string())
                .unwrap_or_default(),
            _ => String::new(),
        }
    };
    rows.sort_by(|a, b| {
        // (other) stays last whatever the order.
        let ord = if col.numeric() {
            match (num(a), num(b)) {
                (Some(x), Some(y)) => y.total_cmp(&x),
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (None, None) => std::cmp::Ordering::Equal,
            }
        } else {
            text(a).cmp(&text(b))
        };
        let ord = if invert { ord.reverse() } else { ord };
        a.other
            .cmp(&b.other)
            .then(ord)
            .then_with(|| a.key.cmp(&b.key))
    });
}

/// The capture clock's time of day (UTC), `HH:MM:SS`.
pub fn clock(ts: Timestamp) -> String {
    let secs = ts.0.div_euclid(S);
    let day = secs.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", day / 3600, day / 60 % 60, day % 60)
}
