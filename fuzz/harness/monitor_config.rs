//! The monitor's YAML configuration parser and validator on arbitrary text.
//!
//! Shared by `fuzz/fuzz_targets/monitor_config.rs` and the corpus replay in
//! `crates/monitor/tests`.

use zkscope_monitor::config::parse;

fn env(name: &str) -> Option<String> {
    match name {
        "SMTP_HOST" => Some("mail.example.com".into()),
        "SMTP_PORT" => Some("25".into()),
        "HOME" => Some("/root".into()),
        _ => None,
    }
}

/// Parses `data` (if UTF-8) as a monitor config; errors must carry a message.
pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match parse("fuzz.yaml", text, &env) {
        Ok(c) => {
            let _ = c.alerter_kinds();
            let _ = format!("{c:?}");
        }
        Err(e) => {
            assert!(!e.errors.is_empty(), "an error without a problem");
            let _ = e.to_string();
        }
    }
}
