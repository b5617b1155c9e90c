//! Evaluating one node against a rule's checks (pure: the node's state comes in, a verdict
//! goes out).

use serde::Serialize;
use serde_json::json;

use crate::config::{Checks, DataCheck};

/// What was read from ZooKeeper about one node.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeSnapshot {
    /// `None`: the node does not exist.
    pub stat: Option<StatLite>,
    /// The data, when the rule needs it and the node exists.
    pub data: Option<Vec<u8>>,
}

/// The parts of a znode's Stat the checks use.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct StatLite {
    pub ephemeral_owner: i64,
    /// Milliseconds since the epoch.
    pub mtime: i64,
    pub data_length: i64,
    pub num_children: i64,
    pub version: i32,
}

/// zk_monitor's three states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Compliance {
    #[serde(rename = "OK")]
    Ok,
    Error,
    Unknown,
}

impl Compliance {
    pub fn as_str(self) -> &'static str {
        match self {
            Compliance::Ok => "OK",
            Compliance::Error => "Error",
            Compliance::Unknown => "Unknown",
        }
    }
}

/// The outcome of checking a node.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub compliance: Compliance,
    /// zk_monitor's messages: `All checks pass.`, `0 children is less than minimum 1`, …
    pub message: String,
    /// What was seen (children, data size, …), for /status and notifications.
    pub value: serde_json::Value,
    /// When the verdict may change without any ZooKeeper event (`stale_after`), ms since epoch.
    pub recheck_at: Option<i64>,
}

pub const MSG_OK: &str = "All checks pass.";
pub const MSG_UNKNOWN: &str = "No information is available about this path.";

/// A verdict for a node that could not be read (not authorized, …).
pub fn unreadable(reason: &str) -> Verdict {
    Verdict {
        compliance: Compliance::Error,
        message: format!("cannot read node: {reason}"),
        value: serde_json::Value::Null,
        recheck_at: None,
    }
}

/// Checks `node` at wall-clock time `now` (ms since epoch).
pub fn evaluate(checks: &Checks, node: &NodeSnapshot, now: i64) -> Verdict {
    if checks.is_empty() {
        return Verdict {
            compliance: Compliance::Unknown,
            message: MSG_UNKNOWN.into(),
            value: value_of(node),
            recheck_at: None,
        };
    }
    let mut problems: Vec<String> = Vec::new();
    let mut recheck_at = None;
    match &node.stat {
        None => {
            let must_exist = checks.exists == Some(true)
                || checks.data.is_some()
                || checks.ephemeral == Some(true)
                || checks.stale_after.is_some();
            if must_exist {
                problems.push("node does not exist".into());
            } else if let Some(min) = checks.children_min {
                // zk_monitor: a missing node has 0 children
                if min > 0 {
                    problems.push(format!("0 children is less than minimum {min}"));
                }
            }
        }
        Some(stat) => {
            if checks.exists == Some(false) {
                problems.push("node exists but must not".into());
            }
            let n = stat.num_children.max(0) as u64;
            if let Some(min) = checks.children_min {
                if n < min {
                    problems.push(format!("{n} children is less than minimum {min}"));
                }
            }
            if let Some(max) = checks.children_max {
                if n > max {
                    problems.push(format!("{n} children is more than maximum {max}"));
                }
            }
            if let Some(max) = checks.max_data_bytes {
                let len = stat.data_length.max(0) as u64;
                if len > max {
                    problems.push(format!("data is {len} bytes, more than maximum {max}"));
                }
            }
            match checks.ephemeral {
                Some(true) if stat.ephemeral_owner == 0 => {
                    problems.push("node is not ephemeral (no owner session)".into())
                }
                Some(false) if stat.ephemeral_owner != 0 => problems.push(format!(
                    "node is ephemeral (owner session 0x{:x})",
                    stat.ephemeral_owner
                )),
                _ => {}
            }
            if let Some(stale) = checks.stale_after {
                let limit = stale.as_millis().min(i64::MAX as u128) as i64;
                let age = now.saturating_sub(stat.mtime);
                if age > limit {
                    problems.push(format!(
                        "last modified {} ago, more than stale_after {}",
                        crate::duration::format(std::time::Duration::from_millis(age as u64)),
                        crate::duration::format(stale)
                    ));
                } else {
                    recheck_at = Some(stat.mtime.saturating_add(limit).saturating_add(1));
                }
            }
            if let Some(dc) = &checks.data {
                let data = node.data.as_deref().unwrap_or(&[]);
                if let Some(p) = check_data(dc, data) {
                    problems.push(p);
                }
            }
        }
    }
    let (compliance, message) = if problems.is_empty() {
        (Compliance::Ok, MSG_OK.to_string())
    } else {
        (Compliance::Error, problems.join("; "))
    };
    Verdict {
        compliance,
        message,
        value: value_of(node),
        recheck_at,
    }
}

fn check_data(dc: &DataCheck, data: &[u8]) -> Option<String> {
    match dc {
        DataCheck::Regex(re) => {
            let text = String::from_utf8_lossy(data);
            if re.is_match(&text) {
                None
            } else {
                Some(format!(
                    "data {} does not match /{}/",
                    preview(data),
                    re.as_str()
                ))
            }
        }
        DataCheck::Json {
            pointer,
            equals,
            regex,
        } => {
            let doc: serde_json::Value = match serde_json::from_slice(data) {
                Ok(v) => v,
                Err(e) => return Some(format!("data is not JSON ({e})")),
            };
            let Some(found) = doc.pointer(pointer) else {
                return Some(format!("JSON pointer {pointer:?} not found in data"));
            };
            let at = if pointer.is_empty() {
                "data".to_string()
            } else {
                format!("JSON at {pointer}")
            };
            if let Some(want) = equals {
                if !json_equal(found, want) {
                    return Some(format!("{at} is {found}, expected {want}"));
                }
            }
            if let Some(re) = regex {
                let text = match found {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                if !re.is_match(&text) {
                    return Some(format!("{at} is {found}, does not match /{}/", re.as_str()));
                }
            }
            None
        }
    }
}

/// Equality where numbers compare by value (`1` equals `1.0`).
fn json_equal(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match (a, b) {
        (V::Number(x), V::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => x == y,
            _ => x == y,
        },
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| json_equal(a, b))
        }
        (V::Object(x), V::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_equal(v, w)))
        }
        _ => a == b,
    }
}

fn preview(data: &[u8]) -> String {
    let text = String::from_utf8_lossy(data);
    let mut s: String = text.chars().take(64).collect();
    if text.chars().count() > 64 {
        s.push('…');
    }
    format!("{s:?}")
}

fn value_of(node: &NodeSnapshot) -> serde_json::Value {
    match &node.stat {
        None => json!({"exists": false, "children": 0}),
        Some(s) => {
            let mut v = json!({
                "exists": true,
                "children": s.num_children,
                "data_bytes": s.data_length,
                "mtime": s.mtime,
                "version": s.version,
            });
            if s.ephemeral_owner != 0 {
                v["ephemeral_owner"] = json!(format!("0x{:x}", s.ephemeral_owner));
            }
            if let Some(d) = &node.data {
                let text = String::from_utf8_lossy(d);
                let short: String = text.chars().take(256).collect();
                v["data"] = json!(short);
            }
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn node(children: i64) -> NodeSnapshot {
        NodeSnapshot {
            stat: Some(StatLite {
                num_children: children,
                ..StatLite::default()
            }),
            data: None,
        }
    }

    fn with_data(d: &str) -> NodeSnapshot {
        NodeSnapshot {
            stat: Some(StatLite {
                data_length: d.len() as i64,
                ..StatLite::default()
            }),
            data: Some(d.as_bytes().to_vec()),
        }
    }

    #[test]
    fn zk_monitor_children_messages() {
        let c = Checks {
            children_min: Some(1),
            ..Checks::default()
        };
        let v = evaluate(&c, &node(0), 0);
        assert_eq!(v.compliance, Compliance::Error);
        assert_eq!(v.message, "0 children is less than minimum 1");
        let v = evaluate(&c, &node(1), 0);
        assert_eq!((v.compliance, v.message.as_str()), (Compliance::Ok, MSG_OK));
        // a missing node has 0 children
        let v = evaluate(&c, &NodeSnapshot::default(), 0);
        assert_eq!(v.message, "0 children is less than minimum 1");
        // no check → Unknown
        let v = evaluate(&Checks::default(), &node(3), 0);
        assert_eq!(
            (v.compliance, v.message.as_str()),
            (Compliance::Unknown, MSG_UNKNOWN)
        );
    }

    #[test]
    fn max_exists_ephemeral_size_stale() {
        let c = Checks {
            children_min: Some(1),
            children_max: Some(2),
            ..Checks::default()
        };
        assert_eq!(
            evaluate(&c, &node(3), 0).message,
            "3 children is more than maximum 2"
        );
        let c = Checks {
            exists: Some(false),
            ..Checks::default()
        };
        assert_eq!(
            evaluate(&c, &NodeSnapshot::default(), 0).compliance,
            Compliance::Ok
        );
        assert_eq!(
            evaluate(&c, &node(0), 0).message,
            "node exists but must not"
        );
        let c = Checks {
            exists: Some(true),
            ..Checks::default()
        };
        assert_eq!(
            evaluate(&c, &NodeSnapshot::default(), 0).message,
            "node does not exist"
        );
        let c = Checks {
            ephemeral: Some(true),
            ..Checks::default()
        };
        assert!(evaluate(&c, &node(0), 0).message.contains("not ephemeral"));
        let mut n = node(0);
        n.stat.as_mut().unwrap().ephemeral_owner = 0x1234;
        assert_eq!(evaluate(&c, &n, 0).compliance, Compliance::Ok);
        let c = Checks {
            max_data_bytes: Some(3),
            ..Checks::default()
        };
        assert_eq!(
            evaluate(&c, &with_data("abcd"), 0).message,
            "data is 4 bytes, more than maximum 3"
        );
        let c = Checks {
            stale_after: Some(Duration::from_secs(60)),
            ..Checks::default()
        };
        let mut n = node(0);
        n.stat.as_mut().unwrap().mtime = 1_000_000;
        let v = evaluate(&c, &n, 1_030_000);
        assert_eq!(v.compliance, Compliance::Ok);
        assert_eq!(v.recheck_at, Some(1_060_001));
        let v = evaluate(&c, &n, 1_090_000);
        assert_eq!(
            v.message,
            "last modified 1m30s ago, more than stale_after 1m"
        );
    }

    #[test]
    fn data_checks() {
        let c = Checks {
            data: Some(DataCheck::Regex(regex::Regex::new("^v[0-9]+$").unwrap())),
            ..Checks::default()
        };
        assert_eq!(
            evaluate(&c, &with_data("v12"), 0).compliance,
            Compliance::Ok
        );
        assert_eq!(
            evaluate(&c, &with_data("x"), 0).message,
            "data \"x\" does not match /^v[0-9]+$/"
        );
        let json_check = |pointer: &str, equals: Option<serde_json::Value>| Checks {
            data: Some(DataCheck::Json {
                pointer: pointer.into(),
                equals,
                regex: None,
            }),
            ..Checks::default()
        };
        let c = json_check("/state", Some(json!("up")));
        assert_eq!(
            evaluate(&c, &with_data(r#"{"state":"up"}"#), 0).compliance,
            Compliance::Ok
        );
        assert_eq!(
            evaluate(&c, &with_data(r#"{"state":"down"}"#), 0).message,
            "JSON at /state is \"down\", expected \"up\""
        );
        assert!(evaluate(&c, &with_data("nope"), 0)
            .message
            .starts_with("data is not JSON"));
        assert_eq!(
            evaluate(&c, &with_data("{}"), 0).message,
            "JSON pointer \"/state\" not found in data"
        );
        let c = json_check("/n", Some(json!(1)));
        assert_eq!(
            evaluate(&c, &with_data(r#"{"n":1.0}"#), 0).compliance,
            Compliance::Ok
        );
        let c = json_check("/n", None);
        assert_eq!(
            evaluate(&c, &with_data(r#"{"n":null}"#), 0).compliance,
            Compliance::Ok
        );
        // several problems are joined
        let c = Checks {
            children_min: Some(2),
            max_data_bytes: Some(1),
            ..Checks::default()
        };
        assert_eq!(
            evaluate(&c, &with_data("ab"), 0).message,
            "0 children is less than minimum 2; data is 2 bytes, more than maximum 1"
        );
    }
}
