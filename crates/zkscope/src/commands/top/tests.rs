//! The screen driven by scripted keys over a real ZooKeeper 3.8 capture, drawn into
//! ratatui's `TestBackend` and snapshotted (insta). The capture clock makes every run the same.

use std::path::PathBuf;

use ratatui::backend::TestBackend;
use ratatui::style::Color;
use ratatui::Terminal;
use zkscope_analysis::{ClassOptions, Filter, Fold};
use zkscope_capture::client::{ClientConfig, ServerSpec};
use zkscope_capture::pipeline::{Decoder, Pipeline, StopHandle};
use zkscope_capture::PacketSource;

use super::app::{App, Col, Data, Key};
use super::model::{Feed, TopState, View};
use super::{batch, ui};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/real")
        .join(name)
}

fn settings() -> super::model::Settings {
    super::model::Settings {
        max_keys: 5000,
        depth: 0,
        classes: Some(ClassOptions {
            depth: 0,
            fold: Fold::All,
            user: Vec::new(),
        }),
        filter: Filter {
            pings: false,
            ..Filter::default()
        },
        batch_windows: Some(1),
    }
}

/// Replays `name` through the capture-side state as fast as possible.
fn replay(name: &str) -> Data {
    let decoder = Decoder::Client {
        spec: ServerSpec {
            ports: vec![2181],
            ..ServerSpec::default()
        },
        config: ClientConfig::default(),
    };
    replay_with(&fixture(name), decoder)
}

/// Replays `path` with `decoder`.
fn replay_with(path: &std::path::Path, decoder: Decoder) -> Data {
    let state = TopState::new(settings(), None, View::Ops, 0);
    let handles = state.handles();
    let state = std::sync::Arc::new(std::sync::Mutex::new(state));
    let source = PacketSource::open_file(path).expect("fixture");
    let fin = Pipeline::new(source, decoder, StopHandle::new()).run(Feed {
        pacer: None,
        state: state.clone(),
    });
    state.lock().expect("state").finish();
    Data {
        windows: handles.windows.read(),
        published: handles.published(),
        counters: fin.counters,
    }
}

fn app() -> App {
    let mut app = App::new("zk38-session.pcap".into(), View::Ops, true, true);
    app.update(replay("zk38-session.pcap"));
    app
}

fn render(app: &mut App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    t.draw(|f| ui::draw(f, app)).expect("draw");
    t
}

fn text(t: &Terminal<TestBackend>) -> String {
    let b = t.backend().buffer();
    let mut out = String::new();
    for y in 0..b.area.height {
        for x in 0..b.area.width {
            out.push_str(b[(x, y)].symbol());
        }
        out.push('\n');
    }
    out
}

fn keys(app: &mut App, ks: &[Key]) {
    for k in ks {
        app.key(*k);
    }
}

fn type_str(app: &mut App, s: &str) {
    for c in s.chars() {
        app.key(Key::Char(c));
    }
}

#[test]
fn ops_at_80x24() {
    let mut app = app();
    let t = render(&mut app, 80, 24);
    insta::assert_snapshot!(t.backend());
}

#[test]
fn ops_at_160x48() {
    let mut app = app();
    let t = render(&mut app, 160, 48);
    insta::assert_snapshot!(t.backend());
}

#[test]
fn rows_agree_with_count() {
    // `zkscope count -g op` on the same capture: 176 calls, delete 46, create 34, getData 29.
    let mut app = app();
    app.key(Key::Char('t'));
    assert_eq!(app.total.total, 176);
    assert_eq!(app.total.total_errors, 23);
    let get = |k: &str| app.rows.iter().find(|r| r.key == k).map(|r| r.total);
    assert_eq!(get("delete"), Some(46));
    assert_eq!(get("create"), Some(34));
    assert_eq!(get("getData"), Some(29));
    assert_eq!(app.rows.iter().map(|r| r.total).sum::<u64>(), 176);
}

#[test]
fn sort_keys_and_invert() {
    let mut app = app();
    assert_eq!(app.sort_col(), Col::R10);
    app.key(Key::Char('a'));
    assert_eq!(app.sort_col(), Col::Key(0));
    let names: Vec<String> = app.rows.iter().map(|r| r.key.clone()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    app.key(Key::Char('i'));
    let names: Vec<String> = app.rows.iter().map(|r| r.key.clone()).collect();
    sorted.reverse();
    assert_eq!(names, sorted);
    // `>` walks the columns: the key, then 2s, 10s, …
    app.key(Key::Char('>'));
    assert_eq!(app.sort_col(), Col::R2);
    app.key(Key::Char('<'));
    app.key(Key::Char('<'));
    assert_eq!(app.sort_col(), Col::P99, "wraps around");
    let t = render(&mut app, 80, 24);
    assert!(text(&t).contains("P99▲"), "{}", text(&t));
}

#[test]
fn filter_keeps_totals() {
    let mut app = app();
    app.key(Key::Char('p'));
    let total = app.total.total;
    let all = app.rows.len();
    app.key(Key::Char('/'));
    type_str(&mut app, "CRUD");
    app.key(Key::Enter);
    assert!(!app.editing);
    assert!(!app.rows.is_empty() && app.rows.len() < all);
    assert!(app.rows.iter().all(|r| r.key.contains("/crud")));
    assert_eq!(app.total.total, total, "the filter leaves totals alone");
    let t = render(&mut app, 80, 24);
    insta::assert_snapshot!(t.backend());
    // Esc clears it.
    app.key(Key::Esc);
    assert_eq!(app.rows.len(), all);
    // `!` keeps the rows that do not match.
    app.key(Key::Char('/'));
    type_str(&mut app, "!crud");
    app.key(Key::Enter);
    assert!(!app.rows.is_empty());
    assert!(app.rows.iter().all(|r| !r.key.contains("/crud")));
    assert_eq!(app.rows.len() + 4, all, "4 /crud paths left out");
    app.key(Key::Esc);
    // A bad regex is taken literally.
    app.key(Key::Char('/'));
    type_str(&mut app, "n{");
    assert_eq!(app.filter, "n{");
    assert!(app.rows.iter().all(|r| r.key.contains("n{")));
    assert!(!app.rows.is_empty());
}

#[test]
fn detail_of_a_path() {
    let mut app = app();
    keys(&mut app, &[Key::Char('p'), Key::Char('n')]);
    assert_eq!(app.selected.as_deref(), Some("/pipe/n{n}"));
    app.key(Key::Enter);
    assert!(app.detail);
    let d = app.detail().expect("detail");
    assert_eq!(d.histogram.iter().map(|(_, n)| n).sum::<u64>(), 60);
    assert_eq!(d.clients.first().map(|(_, n)| *n), Some(60));
    assert!(!d.slow.is_empty());
    let t = render(&mut app, 80, 24);
    insta::assert_snapshot!(t.backend());
    app.key(Key::Esc);
    assert!(!app.detail);
    // Selection moves with the arrows and stays on its key across a re-sort.
    app.key(Key::Down);
    let k = app.selected.clone();
    app.key(Key::Char('i'));
    assert_eq!(app.selected, k);
}

#[test]
fn sessions_view() {
    let mut app = app();
    app.key(Key::Char('s'));
    assert_eq!(app.view, View::Sessions);
    assert!(app.rows.len() >= 10);
    let with_timeout = app
        .rows
        .iter()
        .filter(|r| r.session.as_ref().is_some_and(|s| s.timeout_ms.is_some()))
        .count();
    assert!(with_timeout >= 10, "{with_timeout}");
    // Every session of the capture closed, none has a request pending.
    assert!(app
        .rows
        .iter()
        .filter_map(|r| r.session.as_ref())
        .all(|s| s.pending == 0));
    let t = render(&mut app, 160, 48);
    insta::assert_snapshot!(t.backend());
}

#[test]
fn errors_and_watches_views() {
    let mut app = app();
    app.key(Key::Char('e'));
    assert!(app.rows.iter().any(|r| r.keys == ["NONODE", "delete"]));
    app.key(Key::Char('t'));
    assert_eq!(app.total.total, 23, "errors view total = failed calls");
    app.key(Key::Char('w'));
    assert!(
        app.rows
            .iter()
            .any(|r| r.keys.get(1).is_some_and(|k| k == "NodeDataChanged")),
        "{:?}",
        app.rows.iter().map(|r| &r.keys).collect::<Vec<_>>()
    );
    assert!(app
        .rows
        .iter()
        .any(|r| r.keys.get(1).is_some_and(|k| k.starts_with("set "))));
    let t = render(&mut app, 160, 48);
    insta::assert_snapshot!(t.backend());
}

#[test]
fn narrow_screens_drop_columns_first() {
    let mut app = app();
    let t = render(&mut app, 50, 20);
    let s = text(&t);
    assert!(s.contains("closeSession"), "{s}");
    assert!(s.contains("10s▼"), "{s}");
    assert!(!s.contains("40s"), "the 40 s rate goes first: {s}");
    // Tiny terminals draw what fits, with every overlay, and do not panic.
    for (w, h) in [(1, 1), (10, 4), (24, 8)] {
        render(&mut app, w, h);
        app.key(Key::Enter);
        render(&mut app, w, h);
        app.key(Key::Esc);
        app.key(Key::Char('?'));
        render(&mut app, w, h);
        app.key(Key::Esc);
    }
    let wide = text(&render(&mut app, 160, 48));
    assert!(wide.contains("40s") && wide.contains("P50"));
}

#[test]
fn pause_freezes_the_display() {
    let mut app = app();
    app.key(Key::Char(' '));
    assert!(app.paused);
    assert!(
        app.hold.load(std::sync::atomic::Ordering::Relaxed),
        "a replay is held"
    );
    let before = app.total.total;
    app.update(Data::default());
    assert_eq!(app.total.total, before);
    let t = render(&mut app, 80, 24);
    assert!(text(&t).contains("PAUSED"));
    app.key(Key::Char(' '));
    app.update(Data::default());
    assert_eq!(app.total.total, 0);
}

#[test]
fn help_refresh_and_quit() {
    let mut app = app();
    app.key(Key::Char('?'));
    assert!(app.help);
    let t = render(&mut app, 80, 24);
    insta::assert_snapshot!(t.backend());
    app.key(Key::Char('x'));
    assert!(!app.help && !app.quit);
    let ms = app.interval_ms();
    app.key(Key::Char('+'));
    assert!(app.interval_ms() > ms);
    app.key(Key::Char('-'));
    app.key(Key::Char('-'));
    assert!(app.interval_ms() < ms);
    assert!(text(&render(&mut app, 80, 24)).contains("refresh 1s"));
    app.key(Key::Char('q'));
    assert!(app.quit);
}

#[test]
fn colours_only_when_asked() {
    let red = |t: &Terminal<TestBackend>| {
        let b = t.backend().buffer();
        b.content().iter().any(|c| c.fg == Color::Red)
    };
    let mut app = app();
    app.key(Key::Char('t'));
    assert!(red(&render(&mut app, 80, 24)), "errors are red");
    app.color = false;
    assert!(!red(&render(&mut app, 80, 24)), "--no-color");
}

#[test]
fn batch_blocks_add_up() {
    // Each window's interval counts add up to the cumulative ones.
    let (tx, rx) = std::sync::mpsc::sync_channel(64);
    let state = TopState::new(settings(), Some(tx), View::Ops, 0);
    let state = std::sync::Arc::new(std::sync::Mutex::new(state));
    let source = PacketSource::open_file(&fixture("zk38-session.pcap")).expect("fixture");
    let decoder = Decoder::Client {
        spec: ServerSpec {
            ports: vec![2181],
            ..ServerSpec::default()
        },
        config: ClientConfig::default(),
    };
    Pipeline::new(source, decoder, StopHandle::new()).run(Feed {
        pacer: None,
        state: state.clone(),
    });
    {
        let mut s = state.lock().expect("state");
        s.finish();
        s.close_batch();
    }
    let blocks: Vec<String> = rx.iter().collect();
    assert!(blocks.len() >= 2);
    let mut sum = 0u64;
    let mut last_cum = 0u64;
    for b in &blocks {
        let head = b.lines().next().expect("head");
        let num = |after: &str| -> u64 {
            let i = head.find(after).expect(after) + after.len();
            head[i..]
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
                .expect("number")
        };
        sum += num("calls ");
        last_cum = num("(cumulative ");
    }
    assert_eq!((sum, last_cum), (176, 176));
    let _ = batch::block; // the printer is exercised through the state
}

#[test]
fn ensemble_roles_in_the_header() {
    // zktraffic's omni.pcap: three servers elect 2, then 3 joins.
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/zktraffic/omni.pcap");
    let decoder = Decoder::Ensemble {
        spec: zkscope_capture::ensemble::EnsembleSpec::new(zkscope_capture::ensemble::Mode::Auto),
        config: ClientConfig::default(),
        resolver: None,
    };
    let mut app = App::new("omni.pcap".into(), View::Ops, false, true);
    app.update(replay_with(&path, decoder));
    let e = &app.data.published.ensemble;
    assert_eq!(e.leader, Some(2));
    assert_eq!(e.rounds, 2);
    assert!(!e.electing);
    let s = text(&render(&mut app, 80, 24));
    let line = s.lines().nth(2).unwrap_or_default();
    assert!(line.contains("leader 2 epoch 1"), "{s}");
    assert!(line.contains("1:follower 2:leader 3:follower"), "{s}");
    assert!(s.contains("create") && s.contains("sync"), "{s}");
}

#[test]
fn keys_beyond_the_bound_fold_into_other() {
    let state = TopState::new(
        super::model::Settings {
            max_keys: 3,
            ..settings()
        },
        None,
        View::Ops,
        0,
    );
    let handles = state.handles();
    let state = std::sync::Arc::new(std::sync::Mutex::new(state));
    let source = PacketSource::open_file(&fixture("zk38-session.pcap")).expect("fixture");
    let decoder = Decoder::Client {
        spec: ServerSpec {
            ports: vec![2181],
            ..ServerSpec::default()
        },
        config: ClientConfig::default(),
    };
    let fin = Pipeline::new(source, decoder, StopHandle::new()).run(Feed {
        pacer: None,
        state: state.clone(),
    });
    state.lock().expect("state").finish();
    let data = Data {
        windows: handles.windows.read(),
        published: handles.published(),
        counters: fin.counters,
    };
    for w in &data.windows.closed {
        assert!(w.agg.tables.iter().all(|t| t.rows.len() <= 3));
    }
    let cum = data.published.cumulative.as_deref().expect("cumulative");
    assert!(cum.tables.iter().all(|t| t.rows.len() <= 3));
    assert!(data.published.sessions.len() <= 3);
    let mut app = App::new("bounded".into(), View::Paths, false, true);
    let windows = data.windows.closed.len();
    app.update(data);
    app.key(Key::Char('t'));
    let other = app.rows.last().expect("rows");
    assert!(other.other && other.key == "(other)", "{:?}", other.key);
    // The screen shows the keys of the windows it reads (each bounded) and of the counts
    // since the start.
    assert!(app.rows.len() <= 3 * (windows + 1) + 1);
    // Totals stay exact.
    app.key(Key::Char('o'));
    assert_eq!(app.total.total, 176);
    assert_eq!(app.rows.iter().map(|r| r.total).sum::<u64>(), 176);
}

#[test]
fn a_held_replay_waits_until_resumed_or_stopped() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use zkscope_capture::Timestamp;

    let hold = Arc::new(AtomicBool::new(true));
    let stop = StopHandle::new();
    let mut p = super::model::Pacer::new(None, hold.clone(), stop.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let t = std::thread::spawn(move || {
        p.pace(Timestamp(1));
        tx.send(()).expect("send");
        p.pace(Timestamp(2));
        tx.send(()).expect("send");
    });
    // Held: nothing passes until resumed.
    assert!(rx.try_recv().is_err());
    hold.store(false, Ordering::Relaxed);
    rx.recv().expect("resumed");
    rx.recv().expect("not held");
    t.join().expect("pacer thread");
    // A stop ends the wait as well.
    hold.store(true, Ordering::Relaxed);
    let mut p = super::model::Pacer::new(Some(1.0), hold, stop.clone());
    stop.stop();
    p.pace(Timestamp(0));
    p.pace(Timestamp(3_600_000_000_000)); // an hour later on the capture clock: no wait
}
