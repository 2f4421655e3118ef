//! `[admin]`: the admin API's listen address, its token, the stuck-shard threshold and
//! which shards get series of their own in `/metrics`.

use super::problems::Problems;
use crate::config::mapping::{Admin, ShardSeries};
use crate::config::schema::AdminSettings;

/// `[admin] listen` unless given.
pub const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9400";
/// Most `stuck_after_seconds`: a day.
pub const MAX_STUCK_AFTER_SECONDS: u64 = 86_400;
/// `metrics_top_shards` unless given, and its most (~3.6 MB of series per mapping).
pub const DEFAULT_METRICS_TOP_SHARDS: u64 = 20;
pub const MAX_METRICS_TOP_SHARDS: u64 = 1_000;

/// `[admin]`: the listen address, the token (from `token_env` if so given) and the stuck
/// threshold. A non-loopback address without a token is refused: the API moves shards.
pub(super) fn resolve_admin(a: &AdminSettings, p: &mut Problems) -> Admin {
    let stuck_after_ms = p.seconds_as_ms(
        "admin",
        "stuck_after_seconds",
        a.stuck_after_seconds,
        1,
        MAX_STUCK_AFTER_SECONDS,
    ) as i64;
    let token = match (&a.token, &a.token_env) {
        (Some(_), Some(_)) => {
            p.add("admin", "token and token_env are exclusive: give one");
            None
        }
        (Some(token), None) if token.is_empty() => {
            p.add("admin", "token = \"\": must not be empty");
            None
        }
        (Some(token), None) => Some(token.clone()),
        (None, Some(var)) => match std::env::var(var) {
            Ok(token) if !token.is_empty() => Some(token),
            _ => {
                p.add(
                    "admin",
                    format!("token_env = {var:?}: environment variable {var} is not set or empty"),
                );
                None
            }
        },
        (None, None) => None,
    };
    let listen_text = a.listen.as_deref().unwrap_or(DEFAULT_ADMIN_LISTEN);
    let listen = if a.enabled {
        match listen_text.parse::<std::net::SocketAddr>() {
            Ok(addr) => {
                if !addr.ip().is_loopback() && token.is_none() && a.token_env.is_none() {
                    p.add(
                        "admin",
                        format!(
                            "listen = {listen_text:?}: a non-loopback address needs a token (set token or token_env)"
                        ),
                    );
                }
                Some(addr)
            }
            Err(_) => {
                p.add(
                    "admin",
                    format!("listen = {listen_text:?}: must be IP:PORT (e.g. \"127.0.0.1:9400\")"),
                );
                None
            }
        }
    } else {
        None
    };
    Admin {
        listen,
        listen_is_default: a.listen.is_none(),
        token,
        stuck_after_ms,
        shard_series: resolve_shard_series(a, p),
    }
}

/// `metrics_shard_series` and `metrics_top_shards`; the bound only goes with "top".
fn resolve_shard_series(a: &AdminSettings, p: &mut Problems) -> ShardSeries {
    let top = a.metrics_top_shards.unwrap_or(DEFAULT_METRICS_TOP_SHARDS);
    p.range(
        "admin",
        "metrics_top_shards",
        top,
        1,
        MAX_METRICS_TOP_SHARDS,
    );
    let kind = a.metrics_shard_series.as_deref().unwrap_or("top");
    let series = match kind {
        "top" => return ShardSeries::Top(top as usize),
        "all" => ShardSeries::All,
        "none" => ShardSeries::None,
        other => {
            p.add(
                "admin",
                format!("metrics_shard_series = {other:?}: must be \"top\", \"all\" or \"none\""),
            );
            return ShardSeries::Top(top as usize);
        }
    };
    if let Some(top) = a.metrics_top_shards {
        p.add(
            "admin",
            format!("metrics_top_shards = {top}: only goes with metrics_shard_series = \"top\" (it is {kind:?})"),
        );
    }
    series
}

#[cfg(test)]
mod tests {
    use crate::config::mapping::{Admin, ShardSeries};
    use std::path::Path;

    use crate::config::parse;
    use crate::config::resolve::test_support::*;

    #[test]
    fn admin_defaults_ranges_and_the_token_rule_for_non_loopback_addresses() {
        let config = parse(&format!("{WORLD}\n{}", mapping_toml("")), Path::new("")).unwrap();
        assert_eq!(
            config.admin,
            Admin {
                listen: Some("127.0.0.1:9400".parse().unwrap()),
                listen_is_default: true,
                token: None,
                stuck_after_ms: 60_000,
                shard_series: ShardSeries::Top(20),
            }
        );
        let with = |admin: &str| problems(&format!("[admin]\n{admin}\n{}", mapping_toml("")));
        assert_eq!(with("stuck_after_seconds = 1"), Vec::<String>::new());
        assert_eq!(
            with("stuck_after_seconds = 0"),
            vec!["admin: stuck_after_seconds = 0: must be 1..=86400"]
        );
        assert_eq!(
            with("listen = \"0.0.0.0:9400\""),
            vec!["admin: listen = \"0.0.0.0:9400\": a non-loopback address needs a token (set token or token_env)"]
        );
        assert_eq!(
            with("listen = \"0.0.0.0:9400\"\ntoken = \"s3cret\""),
            Vec::<String>::new()
        );
        assert_eq!(
            with("listen = \"localhost\""),
            vec!["admin: listen = \"localhost\": must be IP:PORT (e.g. \"127.0.0.1:9400\")"]
        );
        assert_eq!(
            with("token_env = \"ESM_SIM_TEST_SURELY_UNSET_VARIABLE\""),
            vec!["admin: token_env = \"ESM_SIM_TEST_SURELY_UNSET_VARIABLE\": environment variable ESM_SIM_TEST_SURELY_UNSET_VARIABLE is not set or empty"]
        );
        assert_eq!(
            with("token = \"a\"\ntoken_env = \"B\""),
            vec!["admin: token and token_env are exclusive: give one"]
        );
        let series = |admin: &str| {
            parse(
                &format!("{WORLD}\n[admin]\n{admin}\n{}", mapping_toml("")),
                Path::new(""),
            )
            .map(|c| c.admin.shard_series)
        };
        assert_eq!(
            series("metrics_top_shards = 5").ok(),
            Some(ShardSeries::Top(5))
        );
        assert_eq!(
            series("metrics_shard_series = \"all\"").ok(),
            Some(ShardSeries::All)
        );
        assert_eq!(
            series("metrics_shard_series = \"none\"").ok(),
            Some(ShardSeries::None)
        );
        assert_eq!(
            with("metrics_shard_series = \"some\""),
            vec!["admin: metrics_shard_series = \"some\": must be \"top\", \"all\" or \"none\""]
        );
        assert_eq!(
            with("metrics_top_shards = 0"),
            vec!["admin: metrics_top_shards = 0: must be 1..=1000"]
        );
        assert_eq!(
            with("metrics_shard_series = \"all\"\nmetrics_top_shards = 5"),
            vec!["admin: metrics_top_shards = 5: only goes with metrics_shard_series = \"top\" (it is \"all\")"]
        );
        let off = parse(
            &format!(
                "{WORLD}\n[admin]\nenabled = false\nlisten = \"0.0.0.0:1\"\n{}",
                mapping_toml("")
            ),
            Path::new(""),
        )
        .unwrap();
        assert_eq!(
            off.admin.listen, None,
            "disabled: no address, no token needed"
        );
    }
}
