//! A redrive `--target` (`http(s)://URL`, `lambda:<function name or ARN>`,
//! `command:<program> [args]`) read as a `[[functions]]` entry, so that a redrive builds
//! its function with the daemon's own `assemble::build_function`. Pure: no I/O.

use crate::arn;
use crate::config::schema::FunctionConfig;

/// Function name (for the function ARN and the role in `invokeIdentityArn`) of a `--target`
/// given as a URL or a command.
const ADHOC_FUNCTION_NAME: &str = "esm-sim-redrive";

/// The function a `--target` names, as a `[[functions]]` entry for `assemble::build_function`.
pub(super) fn parse_target(spec: &str, timeout_seconds: u64) -> Result<FunctionConfig, String> {
    let base = FunctionConfig {
        name: ADHOC_FUNCTION_NAME.to_string(),
        timeout_seconds,
        ..FunctionConfig::default()
    };
    if spec.starts_with("http://") || spec.starts_with("https://") {
        return Ok(FunctionConfig {
            function_type: "http".into(),
            url: Some(spec.to_string()),
            ..base
        });
    }
    if let Some(function) = spec.strip_prefix("lambda:") {
        let name = Some(arn::lambda_function_name(function))
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("--target {spec:?}: lambda: needs a function name or ARN"))?;
        return Ok(FunctionConfig {
            name: name.to_string(),
            function_type: "lambda".into(),
            lambda_function: Some(function.to_string()),
            ..base
        });
    }
    if let Some(command) = spec.strip_prefix("command:") {
        let argv: Vec<String> = command.split_whitespace().map(str::to_string).collect();
        if argv.is_empty() {
            return Err(format!("--target {spec:?}: command: needs a program"));
        }
        return Ok(FunctionConfig {
            function_type: "command".into(),
            command: Some(argv),
            ..base
        });
    }
    Err(format!(
        "--target {spec:?}: expected http://URL, https://URL, lambda:<function name or ARN> or command:<program> [args]"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_a_url_a_lambda_function_or_a_command() {
        let http = parse_target("http://127.0.0.1:9/fn", 5).expect("http");
        assert_eq!(
            (
                http.function_type.as_str(),
                http.url.as_deref(),
                http.timeout_seconds
            ),
            ("http", Some("http://127.0.0.1:9/fn"), 5)
        );
        assert_eq!(
            parse_target("https://x.lambda-url.aws/", 5)
                .expect("https")
                .function_type,
            "http"
        );
        let lambda = parse_target("lambda:orders:live", 5).expect("lambda");
        assert_eq!(
            (lambda.name.as_str(), lambda.lambda_function.as_deref()),
            ("orders", Some("orders:live"))
        );
        let arn = "arn:aws:lambda:eu-west-1:111122223333:function:orders:7";
        let lambda = parse_target(&format!("lambda:{arn}"), 5).expect("lambda arn");
        assert_eq!(
            (lambda.name.as_str(), lambda.lambda_function.as_deref()),
            ("orders", Some(arn))
        );
        let command = parse_target("command:python3 handler.py  --fast", 5).expect("command");
        assert_eq!(
            command.command,
            Some(vec!["python3".into(), "handler.py".into(), "--fast".into()])
        );
        assert!(parse_target("command:  ", 5)
            .expect_err("empty")
            .contains("needs a program"));
        assert!(parse_target("lambda:", 5)
            .expect_err("empty")
            .contains("function name"));
        assert!(parse_target("ftp://x", 5)
            .expect_err("unknown")
            .contains("expected http://URL"));
    }
}
