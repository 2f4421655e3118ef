//! `[[functions]]`: each function's name, its type and the keys that type takes, its
//! timeout, and the latency and rules of a simulated function.

use super::problems::Problems;
use super::rules::is_name;
use crate::config::schema::{FunctionConfig, RuleAction};
use crate::limits;

pub(super) fn check_function(index: usize, f: &FunctionConfig, p: &mut Problems) {
    let subject = if f.name.is_empty() {
        format!("function #{}", index + 1)
    } else {
        format!("function {:?}", f.name)
    };
    let subject = subject.as_str();
    if !is_name(&f.name, 1..=64, |c| {
        c.is_ascii_alphanumeric() || c == '-' || c == '_'
    }) {
        p.add(
            subject,
            format!(
                "name = {:?}: must be 1..=64 characters of letters, digits, '-' and '_'",
                f.name
            ),
        );
    }
    check_function_type(subject, f, p);
    p.range(
        subject,
        "timeout_seconds",
        f.timeout_seconds,
        1,
        limits::LAMBDA_MAX_TIMEOUT_SECONDS,
    );
    let p50_ok = p.float_min(subject, "latency.p50_ms", f.latency.p50_ms, 0.0, false);
    if let Some(p99) = f.latency.p99_ms {
        if p50_ok && p99.partial_cmp(&f.latency.p50_ms).is_none_or(|o| o.is_lt()) {
            p.add(
                subject,
                format!(
                    "latency.p99_ms = {p99}: must be >= p50_ms ({})",
                    f.latency.p50_ms
                ),
            );
        } else if !p99.is_finite() {
            p.add(subject, format!("latency.p99_ms = {p99}: must be finite"));
        }
    }
    for (i, rule) in f.rules.iter().enumerate() {
        let subject = format!("{subject} rule {}", i + 1);
        if rule.when_data_contains.is_none() && rule.fraction.is_none() {
            p.add(&subject, "needs when_data_contains or fraction (or both)");
        }
        if let Some(fraction) = rule.fraction {
            p.range(&subject, "fraction", fraction, 0.0, 1.0);
        }
        if rule.body.is_some() && rule.action != RuleAction::Malformed {
            p.add(&subject, "body is only valid with action = \"malformed\"");
        }
    }
}

/// The keys of each function type: required ones present, others' absent.
fn check_function_type(subject: &str, f: &FunctionConfig, p: &mut Problems) {
    let simulated_keys =
        !f.rules.is_empty() || f.latency.p50_ms != 0.0 || f.latency.p99_ms.is_some();
    let present = [
        ("url", f.url.is_some()),
        ("headers", !f.headers.is_empty()),
        ("command", f.command.is_some()),
        ("env", !f.env.is_empty()),
        ("working_dir", f.working_dir.is_some()),
        ("lambda_function", f.lambda_function.is_some()),
        ("rules / latency", simulated_keys),
    ];
    let (required, allowed): (&[&str], &[&str]) = match f.function_type.as_str() {
        "simulated" => (&[], &["rules / latency"]),
        "http" => (&["url"], &["url", "headers"]),
        "command" => (&["command"], &["command", "env", "working_dir"]),
        "lambda" => (&["lambda_function"], &["lambda_function"]),
        other => {
            p.add(
                subject,
                format!(
                    "type = {other:?}: must be \"simulated\", \"http\", \"command\" or \"lambda\""
                ),
            );
            return;
        }
    };
    for (key, is_set) in present {
        if is_set && !allowed.contains(&key) {
            p.add(
                subject,
                format!("{key}: not a setting of type = {:?}", f.function_type),
            );
        }
        if !is_set && required.contains(&key) {
            p.add(
                subject,
                format!("{key}: required for type = {:?}", f.function_type),
            );
        }
    }
    if let Some(url) = &f.url {
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            p.add(
                subject,
                format!("url = {url:?}: must start with http:// or https://"),
            );
        }
    }
    if f.command
        .as_ref()
        .is_some_and(|c| c.first().is_none_or(|program| program.is_empty()))
    {
        p.add(
            subject,
            "command: must name a program: [\"python3\", \"handler.py\"]",
        );
    }
    if f.lambda_function.as_ref().is_some_and(|l| l.is_empty()) {
        p.add(subject, "lambda_function: must be a function name or ARN");
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;
    use crate::config::resolve::test_support::*;
    use std::path::Path;

    /// Problems of a config whose only function is `function_toml` (named "f").
    fn function_problems(function_toml: &str) -> Vec<String> {
        let text = format!(
            "[[streams]]\nname = \"s\"\nkind = \"kinesis\"\nshards = 1\n[[functions]]\nname = \"f\"\n{function_toml}\n\
             [[mappings]]\nname = \"m\"\nevent_source_arn = \"s\"\nfunction_name = \"f\"\nstarting_position = \"LATEST\"\n"
        );
        match parse(&text, Path::new("")) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems,
        }
    }

    #[test]
    fn function_rules() {
        assert!(
            function_problems("timeout_seconds = 1\nlatency = { p50_ms = 0.0, p99_ms = 0.0 }")
                .is_empty()
        );
        assert!(function_problems("timeout_seconds = 900").is_empty());
        assert_eq!(
            function_problems("timeout_seconds = 901"),
            vec!["function \"f\": timeout_seconds = 901: must be 1..=900"]
        );
        assert_eq!(
            function_problems("type = \"http\""),
            vec!["function \"f\": url: required for type = \"http\""]
        );
        assert!(function_problems(
            "type = \"http\"\nurl = \"http://127.0.0.1:9000/\"\nheaders = { x-api-key = \"k\" }"
        )
        .is_empty());
        assert!(function_problems(
            "type = \"command\"\ncommand = [\"python3\", \"h.py\"]\nenv = { A = \"1\" }"
        )
        .is_empty());
        assert!(function_problems("type = \"lambda\"\nlambda_function = \"orders\"").is_empty());
        assert_eq!(
            function_problems("type = \"ftp\""),
            vec!["function \"f\": type = \"ftp\": must be \"simulated\", \"http\", \"command\" or \"lambda\""]
        );
        assert_eq!(
            function_problems("type = \"command\"\ncommand = []\nurl = \"ftp://x\""),
            vec![
                "function \"f\": url: not a setting of type = \"command\"",
                "function \"f\": url = \"ftp://x\": must start with http:// or https://",
                "function \"f\": command: must name a program: [\"python3\", \"handler.py\"]",
            ]
        );
        assert_eq!(
            function_problems(
                "type = \"lambda\"\nlambda_function = \"f\"\nlatency = { p50_ms = 5.0 }"
            ),
            vec!["function \"f\": rules / latency: not a setting of type = \"lambda\""]
        );
        assert_eq!(
            function_problems("latency = { p50_ms = -1.0 }"),
            vec!["function \"f\": latency.p50_ms = -1: must be >= 0"]
        );
        assert_eq!(
            function_problems("latency = { p50_ms = 10.0, p99_ms = 5.0 }"),
            vec!["function \"f\": latency.p99_ms = 5: must be >= p50_ms (10)"]
        );
        let rules = "[[functions.rules]]\naction = \"error\"\n\
                     [[functions.rules]]\nfraction = 1.5\naction = \"partial\"\n\
                     [[functions.rules]]\nfraction = 1.0\naction = \"error\"\nbody = \"x\"\n\
                     [[functions.rules]]\nfraction = 0.0\naction = \"malformed\"\nbody = \"x\"\n\
                     [[functions.rules]]\nwhen_data_contains = \"poison\"\naction = \"throttle\"\n";
        assert_eq!(
            function_problems(rules),
            vec![
                "function \"f\" rule 1: needs when_data_contains or fraction (or both)",
                "function \"f\" rule 2: fraction = 1.5: must be 0..=1",
                "function \"f\" rule 3: body is only valid with action = \"malformed\"",
            ]
        );
        let text = format!(
            "{WORLD}[[functions]]\nname = \"order-processor\"\n{}",
            mapping_toml("")
        );
        assert!(parse(&text, Path::new("")).unwrap_err().problems.contains(
            &"function \"order-processor\": name is used by more than one [[functions]] entry"
                .to_string()
        ));
    }
}
