//! The settings as the environment gives them.
use super::*;
use std::collections::HashMap;

fn settings(vars: &[(&str, &str)]) -> Result<Settings, ConfigError> {
    let map: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_lookup(|name| map.get(name).cloned())
}

#[test]
fn defaults_apply_when_nothing_is_set() {
    let s = settings(&[]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.bind.port(), 8080);
    assert_eq!(s.default_hold_minutes, 10);
    assert!(s.redis_url.is_none());
    assert!(s.jwt_secret_generated && s.jwt_secret.len() == 32);
    assert!(s.relay && s.outbox_claim == Duration::from_secs(30));
}

#[test]
fn malformed_values_name_their_variable() {
    for (name, value) in [
        ("BOXOFFICE_BIND", "nowhere"),
        ("DATABASE_URL", "mysql://x"),
        ("REDIS_URL", "http://x"),
        ("BOXOFFICE_JWT_SECRET", "short"),
        ("BOXOFFICE_HOLD_MINUTES", "0"),
        ("BOXOFFICE_HOLD_MINUTES", "ten"),
        ("BOXOFFICE_LOG_FORMAT", "xml"),
        ("BOXOFFICE_WORKERS", "-1"),
        ("BOXOFFICE_NODE_ID", "a b"),
        ("BOXOFFICE_INTERNAL_URL", "10.0.0.5:8080"),
        ("BOXOFFICE_LEASE_MS", "10"),
        ("BOXOFFICE_OPERATOR_TOKEN", "short"),
        ("BOXOFFICE_TRUSTED_PROXIES", "10.0.0.0/99"),
        ("BOXOFFICE_TRUSTED_PROXIES", "nginx"),
        ("BOXOFFICE_RELAY", "sometimes"),
        ("BOXOFFICE_BREAKER", "maybe"),
        ("BOXOFFICE_BREAKER_FAILURE_PERCENT", "0"),
        ("BOXOFFICE_BREAKER_FAILURE_PERCENT", "101"),
        ("BOXOFFICE_DEGRADED_ADMISSION_PERCENT", "200"),
        ("BOXOFFICE_ORDER_QUEUE", "0"),
        ("BOXOFFICE_OUTBOX_CLAIM_SECONDS", "1"),
    ] {
        let error = settings(&[(name, value)]).err();
        assert_eq!(error.map(|e| e.name), Some(name), "{name}={value}");
    }
}

#[test]
fn networks_contain_their_addresses_only() {
    let parse = |s: &str| IpNet::parse(s).unwrap_or_else(|| panic!("{s}"));
    let ip = |s: &str| {
        s.parse::<std::net::IpAddr>()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    assert!(parse("10.0.0.0/8").contains(ip("10.200.3.4")));
    assert!(!parse("10.0.0.0/8").contains(ip("11.0.0.1")));
    assert!(parse("127.0.0.1").contains(ip("127.0.0.1")));
    assert!(!parse("127.0.0.1").contains(ip("127.0.0.2")));
    assert!(parse("fd00::/8").contains(ip("fd12::1")));
    assert!(!parse("fd00::/8").contains(ip("10.0.0.1")));
    assert!(parse("0.0.0.0/0").contains(ip("8.8.8.8")));
    assert_eq!(IpNet::parse("10.0.0.0/33"), None);
}

#[test]
fn another_database_on_the_same_server() {
    let s =
        settings(&[("DATABASE_URL", "postgres://u:p@h:1/main")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        s.with_database("other").database_url,
        "postgres://u:p@h:1/other"
    );
}

#[test]
fn the_breaker_counts_a_call_slow_at_half_the_payment_timeout_unless_told() {
    let s = settings(&[]).unwrap_or_else(|e| panic!("{e}"));
    assert!(s.degrade.enabled);
    assert_eq!(s.degrade.slow_call, Duration::from_secs(5));
    assert_eq!(s.order_queue, 4_096);
    let s = settings(&[("BOXOFFICE_PAYMENT_TIMEOUT_MS", "3000")]).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.degrade.slow_call, Duration::from_millis(1_500));
    let s = settings(&[
        ("BOXOFFICE_PAYMENT_TIMEOUT_MS", "3000"),
        ("BOXOFFICE_BREAKER_SLOW_MS", "800"),
        ("BOXOFFICE_BREAKER", "false"),
    ])
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.degrade.slow_call, Duration::from_millis(800));
    assert!(!s.degrade.enabled);
}
