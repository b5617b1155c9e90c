//! Alerters: email (SMTP), Slack, generic JSON webhook, Alertmanager v2. Each sends one
//! [`Payload`] to one [`Target`]; retries live in [`crate::dispatch`].

use std::collections::BTreeMap;
use std::time::Duration;

use lettre::message::{header::ContentType, Mailbox};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::json;

use crate::config::{
    AlertmanagerTarget, EmailTarget, SlackTarget, SmtpSecurity, Target, TargetKind, WebhookTarget,
};
use crate::engine::{Millis, NotificationKind};

/// What a delivery is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadKind {
    Notify(NotificationKind),
    /// Alertmanager only: re-post of a firing alert so that it stays active.
    Refresh,
}

impl PayloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PayloadKind::Notify(k) => k.as_str(),
            PayloadKind::Refresh => "refresh",
        }
    }
    fn resolved(self) -> bool {
        self == PayloadKind::Notify(NotificationKind::Resolved)
    }
}

/// Everything an alerter may put in a message.
#[derive(Debug, Clone, PartialEq)]
pub struct Payload {
    pub kind: PayloadKind,
    /// The rule as configured (may be a glob).
    pub rule: String,
    /// The node.
    pub path: String,
    pub incident_id: String,
    /// When the node went out of spec.
    pub started: Millis,
    pub fired_at: Option<Millis>,
    pub at: Millis,
    pub message: String,
    pub value: serde_json::Value,
    pub flapping: bool,
    pub severity: String,
    pub labels: BTreeMap<String, String>,
    pub description: Option<String>,
    pub cluster: String,
    pub agent: String,
    pub status_url: Option<String>,
}

impl Payload {
    /// zk_monitor's state name for the path.
    fn zk_state(&self) -> &'static str {
        if self.kind.resolved() {
            "OK"
        } else {
            "Error"
        }
    }
}

/// RFC 3339 UTC with milliseconds.
pub fn rfc3339(ms: Millis) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| ms.to_string())
}

/// Sends one payload to one target.
pub async fn send(target: &Target, p: &Payload, http: &reqwest::Client) -> Result<(), String> {
    match &target.kind {
        TargetKind::Email(e) => send_email(e, p).await,
        TargetKind::Slack(s) => send_slack(s, p, http).await,
        TargetKind::Webhook(w) => send_webhook(w, p, http).await,
        TargetKind::Alertmanager(a) => send_alertmanager(a, p, http).await,
    }
}

// ------------------------------------------------------------------- email

/// Subject line: `[FIRING] /path: message`, `[RESOLVED] /path is back in spec`,
/// `[REMINDER] …`.
pub fn email_subject(p: &Payload) -> String {
    match p.kind {
        PayloadKind::Notify(NotificationKind::Resolved) => {
            format!("[RESOLVED] {} is back in spec", p.path)
        }
        PayloadKind::Notify(NotificationKind::Repeat) => {
            format!("[REMINDER] {}: {}", p.path, p.message)
        }
        _ => format!("[FIRING] {}: {}", p.path, p.message),
    }
}

pub fn email_body(p: &Payload) -> String {
    let mut b = String::new();
    // zk_monitor's body, then the details
    b.push_str(&format!(
        "{}\n{} is in the {} state.\n\n",
        p.message,
        p.path,
        p.zk_state()
    ));
    if let Some(d) = &p.description {
        b.push_str(&format!("{d}\n\n"));
    }
    let state = match p.kind {
        PayloadKind::Notify(NotificationKind::Resolved) => "RESOLVED",
        _ => "FIRING",
    };
    b.push_str(&format!("state:        {state}\n"));
    b.push_str(&format!("rule:         {}\n", p.rule));
    b.push_str(&format!("path:         {}\n", p.path));
    b.push_str(&format!("out of spec:  since {}\n", rfc3339(p.started)));
    if p.kind.resolved() {
        b.push_str(&format!("resolved:     {}\n", rfc3339(p.at)));
    }
    if p.flapping {
        b.push_str("flapping:     yes (state changes are damped)\n");
    }
    b.push_str(&format!("value:        {}\n", p.value));
    b.push_str(&format!("severity:     {}\n", p.severity));
    b.push_str(&format!("incident:     {}\n", p.incident_id));
    b.push_str(&format!(
        "cluster:      {} (agent {})\n",
        p.cluster, p.agent
    ));
    if let Some(u) = &p.status_url {
        b.push_str(&format!("status:       {u}\n"));
    }
    b
}

fn message_id(p: &Payload, domain: &str) -> String {
    let base = format!("<{}.{}", p.incident_id, sanitize_id(&p.path));
    match p.kind {
        PayloadKind::Notify(NotificationKind::Firing) => format!("{base}@{domain}>"),
        other => format!("{base}.{}.{}@{domain}>", other.as_str(), p.at),
    }
}

fn sanitize_id(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '.' })
        .collect::<String>()
        .trim_matches('.')
        .to_string()
}

fn local_hostname() -> String {
    hostname::get()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

async fn send_email(e: &EmailTarget, p: &Payload) -> Result<(), String> {
    let host = local_hostname();
    let from_text = e
        .from
        .clone()
        .unwrap_or_else(|| format!("zkscope-monitor <zkscope-monitor@{host}>"));
    let from: Mailbox = from_text
        .parse()
        .map_err(|err| format!("bad from address {from_text:?}: {err}"))?;
    let domain = from.email.domain().to_string();
    let mut b = Message::builder()
        .from(from)
        .subject(email_subject(p))
        .header(ContentType::TEXT_PLAIN);
    for to in &e.to {
        let mb: Mailbox = to
            .parse()
            .map_err(|err| format!("bad recipient {to:?}: {err}"))?;
        b = b.to(mb);
    }
    // resolve notices and reminders thread under the FIRING mail
    let first = message_id(
        &Payload {
            kind: PayloadKind::Notify(NotificationKind::Firing),
            ..p.clone()
        },
        &domain,
    );
    b = b.message_id(Some(message_id(p, &domain)));
    if p.kind != PayloadKind::Notify(NotificationKind::Firing) {
        b = b.in_reply_to(first.clone()).references(first);
    }
    let msg = b
        .body(email_body(p))
        .map_err(|err| format!("cannot build email: {err}"))?;

    let s = &e.smtp;
    let tls_params = || -> Result<TlsParameters, String> {
        let mut tb = TlsParameters::builder(s.host.clone());
        if let Some(ca) = &s.ca_file {
            let pem = std::fs::read(ca)
                .map_err(|err| format!("cannot read smtp ca_file {}: {err}", ca.display()))?;
            let cert = Certificate::from_pem(&pem)
                .map_err(|err| format!("bad smtp ca_file {}: {err}", ca.display()))?;
            tb = tb.add_root_certificate(cert);
        }
        tb.build_rustls()
            .map_err(|err| format!("TLS setup for {}: {err}", s.host))
    };
    let tls = match s.security {
        SmtpSecurity::Never => Tls::None,
        SmtpSecurity::Opportunistic => Tls::Opportunistic(tls_params()?),
        SmtpSecurity::Required => Tls::Required(tls_params()?),
        SmtpSecurity::Tls => Tls::Wrapper(tls_params()?),
    };
    let mut tb = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(s.host.as_str())
        .port(s.port)
        .tls(tls)
        .timeout(Some(s.timeout))
        .hello_name(ClientId::Domain(host));
    if let (Some(u), Some(pw)) = (&s.username, &s.password) {
        tb = tb.credentials(Credentials::new(u.clone(), pw.clone()));
    }
    let transport = tb.build();
    transport
        .send(msg)
        .await
        .map(|_| ())
        .map_err(|err| format!("SMTP {}:{}: {err}", s.host, s.port))
}

// ------------------------------------------------------------------- Slack

/// zk_monitor's Slack text: `(<emoji>) <path> is in <state> - <message>`.
pub fn slack_text(p: &Payload) -> String {
    let (emoji, prefix) = match p.kind {
        PayloadKind::Notify(NotificationKind::Resolved) => (":+1:", ""),
        PayloadKind::Notify(NotificationKind::Repeat) => (":exclamation:", "reminder: "),
        _ => (":exclamation:", ""),
    };
    format!(
        "({emoji}) {prefix}{} is in {} - {}",
        p.path,
        p.zk_state(),
        p.message
    )
}

async fn send_slack(s: &SlackTarget, p: &Payload, http: &reqwest::Client) -> Result<(), String> {
    let mut body = json!({"text": slack_text(p)});
    if let Some(c) = &s.channel {
        body["channel"] = json!(c);
    }
    if let Some(u) = &s.username {
        body["username"] = json!(u);
    }
    if let Some(i) = &s.icon_emoji {
        body["icon_emoji"] = json!(i);
    }
    if let Some(url) = &s.webhook {
        let r = http
            .post(url)
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("Slack webhook: {}", error_chain(&e)))?;
        check_status("Slack webhook", r).await.map(|_| ())
    } else {
        let token = s.token.as_deref().unwrap_or_default();
        let r = http
            .post(&s.api_url)
            .bearer_auth(token)
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("Slack API: {}", error_chain(&e)))?;
        let text = check_status("Slack API", r).await?;
        // chat.postMessage answers 200 with {"ok": false, "error": …} on failure
        match serde_json::from_str::<serde_json::Value>(&text) {
            Ok(v) if v["ok"] == json!(true) => Ok(()),
            Ok(v) => Err(format!("Slack API error: {}", v["error"])),
            Err(_) => Err(format!("Slack API: unexpected answer {}", truncate(&text))),
        }
    }
}

// ------------------------------------------------------------------ webhook

/// The generic webhook's JSON body.
pub fn webhook_body(p: &Payload) -> serde_json::Value {
    json!({
        "version": "1",
        "kind": p.kind.as_str(),
        "status": if p.kind.resolved() { "resolved" } else { "firing" },
        "state": p.zk_state(),
        "rule": p.rule,
        "path": p.path,
        "message": p.message,
        "value": p.value,
        "flapping": p.flapping,
        "severity": p.severity,
        "labels": p.labels,
        "description": p.description,
        "incident": {
            "id": p.incident_id,
            "started": rfc3339(p.started),
            "fired_at": p.fired_at.map(rfc3339),
        },
        "at": rfc3339(p.at),
        "cluster": p.cluster,
        "agent": p.agent,
        "status_url": p.status_url,
    })
}

async fn send_webhook(
    w: &WebhookTarget,
    p: &Payload,
    http: &reqwest::Client,
) -> Result<(), String> {
    let mut req = http.post(&w.url).json(&webhook_body(p)).timeout(w.timeout);
    for (k, v) in &w.headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let r = req
        .send()
        .await
        .map_err(|e| format!("webhook: {}", error_chain(&e)))?;
    check_status("webhook", r).await.map(|_| ())
}

// ------------------------------------------------------------- Alertmanager

/// One alert of Alertmanager's v2 API (`POST /api/v2/alerts` takes a list of these).
pub fn alertmanager_alert(a: &AlertmanagerTarget, p: &Payload) -> serde_json::Value {
    let mut labels: BTreeMap<String, String> = BTreeMap::new();
    labels.insert("alertname".into(), a.alertname.clone());
    labels.insert("path".into(), p.path.clone());
    labels.insert("rule".into(), p.rule.clone());
    labels.insert("zk_monitor_cluster".into(), p.cluster.clone());
    labels.insert("severity".into(), p.severity.clone());
    for (k, v) in p.labels.iter().chain(a.labels.iter()) {
        if crate::config::valid_label_name(k) {
            labels.insert(k.clone(), v.clone());
        }
    }
    let mut annotations: BTreeMap<String, String> = a.annotations.clone();
    annotations.insert(
        "summary".into(),
        format!("{} is out of spec: {}", p.path, p.message),
    );
    annotations.insert("message".into(), p.message.clone());
    annotations.insert("value".into(), p.value.to_string());
    annotations.insert("incident".into(), p.incident_id.clone());
    if let Some(d) = &p.description {
        annotations.insert("description".into(), d.clone());
    }
    if p.flapping {
        annotations.insert("flapping".into(), "true".into());
    }
    let ends = if p.kind.resolved() {
        p.at
    } else {
        // stays active until re-posted; expires by itself if every agent is gone
        let resend = a.resend_interval.as_millis().min(i64::MAX as u128) as i64;
        p.at.saturating_add(resend.saturating_mul(4))
    };
    let mut alert = json!({
        "labels": labels,
        "annotations": annotations,
        "startsAt": rfc3339(p.started),
        "endsAt": rfc3339(ends),
    });
    if let Some(u) = &p.status_url {
        alert["generatorURL"] = json!(u);
    }
    alert
}

async fn send_alertmanager(
    a: &AlertmanagerTarget,
    p: &Payload,
    http: &reqwest::Client,
) -> Result<(), String> {
    let url = format!("{}/api/v2/alerts", a.url);
    let r = http
        .post(&url)
        .json(&json!([alertmanager_alert(a, p)]))
        .timeout(a.timeout)
        .send()
        .await
        .map_err(|e| format!("Alertmanager: {}", error_chain(&e)))?;
    check_status("Alertmanager", r).await.map(|_| ())
}

// ------------------------------------------------------------------- helpers

async fn check_status(what: &str, r: reqwest::Response) -> Result<String, String> {
    let status = r.status();
    let text = r.text().await.unwrap_or_default();
    if status.is_success() {
        Ok(text)
    } else {
        Err(format!("{what}: HTTP {status}: {}", truncate(&text)))
    }
}

fn truncate(s: &str) -> String {
    let t: String = s.chars().take(200).collect();
    t.trim().to_string()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(": ");
        s.push_str(&x.to_string());
        src = x.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(kind: PayloadKind) -> Payload {
        Payload {
            kind,
            rule: "/services/*/members".into(),
            path: "/services/foo/members".into(),
            incident_id: "18c".into(),
            started: 1_700_000_000_000,
            fired_at: Some(1_700_000_010_000),
            at: 1_700_000_020_000,
            message: "0 children is less than minimum 1".into(),
            value: json!({"children": 0}),
            flapping: false,
            severity: "critical".into(),
            labels: BTreeMap::from([("team".to_string(), "storage".to_string())]),
            description: None,
            cluster: "zkmonitor".into(),
            agent: "host-1".into(),
            status_url: Some("http://host:8080/status".into()),
        }
    }

    #[test]
    fn texts() {
        let f = payload(PayloadKind::Notify(NotificationKind::Firing));
        assert_eq!(
            email_subject(&f),
            "[FIRING] /services/foo/members: 0 children is less than minimum 1"
        );
        assert!(email_body(&f).starts_with(
            "0 children is less than minimum 1\n/services/foo/members is in the Error state.\n"
        ));
        assert_eq!(
            slack_text(&f),
            "(:exclamation:) /services/foo/members is in Error - 0 children is less than minimum 1"
        );
        let r = Payload {
            message: "All checks pass.".into(),
            ..payload(PayloadKind::Notify(NotificationKind::Resolved))
        };
        assert_eq!(
            email_subject(&r),
            "[RESOLVED] /services/foo/members is back in spec"
        );
        assert_eq!(
            slack_text(&r),
            "(:+1:) /services/foo/members is in OK - All checks pass."
        );
        assert_eq!(message_id(&f, "x.org"), "<18c.services.foo.members@x.org>");
        assert!(message_id(&r, "x.org").starts_with("<18c.services.foo.members.resolved."));
        let w = webhook_body(&r);
        assert_eq!(w["status"], "resolved");
        assert_eq!(w["incident"]["started"], "2023-11-14T22:13:20.000Z");
    }

    #[test]
    fn alertmanager_payload() {
        let a = AlertmanagerTarget {
            url: "http://am".into(),
            alertname: "ZnodeOutOfSpec".into(),
            labels: BTreeMap::from([("env".to_string(), "prod".to_string())]),
            annotations: BTreeMap::new(),
            resend_interval: Duration::from_secs(60),
            timeout: Duration::from_secs(1),
        };
        let f = alertmanager_alert(&a, &payload(PayloadKind::Notify(NotificationKind::Firing)));
        assert_eq!(f["labels"]["alertname"], "ZnodeOutOfSpec");
        assert_eq!(f["labels"]["path"], "/services/foo/members");
        assert_eq!(f["labels"]["env"], "prod");
        assert_eq!(f["labels"]["team"], "storage");
        assert_eq!(f["startsAt"], "2023-11-14T22:13:20.000Z");
        assert_eq!(f["endsAt"], "2023-11-14T22:17:40.000Z");
        assert_eq!(f["generatorURL"], "http://host:8080/status");
        let r = alertmanager_alert(
            &a,
            &payload(PayloadKind::Notify(NotificationKind::Resolved)),
        );
        assert_eq!(r["endsAt"], "2023-11-14T22:13:40.000Z");
    }
}
