#!/usr/bin/env bash
# Installs what the tests need and runs every test: the one test command of the README,
# and what CI (.ci/run) calls. Safe to run on a fresh machine and again on a used one.
#
# 1. cargo fmt --check, then clippy with -D warnings.
# 2. Installs the local AWS servers the integration tests run against, if missing, into
#    .test-servers/ (git-ignored): moto in server mode (SQS, SNS, DynamoDB, DynamoDB
#    Streams) in a Python venv, the aws CLI in another (the tests drive the Lambda API with
#    it and with moto's boto3), and kinesis-local (Kinesis) with npm. Needs python3 with
#    venv, node and npm besides Rust (Debian: python3-venv, nodejs, npm). Installs
#    Debian's chromium with apt-get (as root, else with sudo) when missing, for the
#    dashboard's headless-browser test; no chromium, no run.
# 3. Builds the tests, starts both servers on 127.0.0.1 (free ports, loopback only, logs
#    in .test-servers/test-run/; see scripts/test-servers.sh), exports their endpoints in
#    ESM_SIM_TEST_KINESIS_ENDPOINT and ESM_SIM_TEST_MOTO_ENDPOINT (the tests' clients)
#    and in AWS_ENDPOINT_URL_<SERVICE> (the daemon's clients: Kinesis on kinesis-local,
#    the rest on moto), and runs `cargo test --all-targets --locked` with test AWS
#    credentials, region us-east-1 and none of the caller's AWS profile or endpoints.
#    The servers are stopped on every exit: success, failure, Ctrl-C, SIGTERM.
# Exits with cargo's status.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v cargo >/dev/null 2>&1 ||
  missing+=("cargo not found: install Rust with rustup (https://rustup.rs)")
if ! command -v python3 >/dev/null 2>&1; then
  missing+=("python3 not found: install Python 3 with venv (Debian: apt-get install python3 python3-venv)")
elif [[ ! -x .test-servers/moto/bin/python ]] && ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
  missing+=("python3 has no venv/ensurepip (Debian: apt-get install python3-venv)")
fi
command -v node >/dev/null 2>&1 ||
  missing+=("node not found: install Node.js 20 or later (Debian: apt-get install nodejs)")
[[ -f .test-servers/kinesis-local/.esm-sim-pin ]] || command -v npm >/dev/null 2>&1 ||
  missing+=("npm not found (Debian: apt-get install npm)")
if ((${#missing[@]})); then
  printf 'error: %s\n' "${missing[@]}" >&2
  echo "Install what is missing, then run this again." >&2
  exit 1
fi

# The engine's own AWS clients in the tests: static test credentials, one region, no
# instance metadata, and nothing from the caller's AWS setup (no profile, config file,
# session token or endpoint of theirs). The endpoints are set below, once the servers run.
for variable in $(compgen -e); do
  case "$variable" in
    AWS_ENDPOINT_URL* | AWS_IGNORE_CONFIGURED_ENDPOINT_URLS* | AWS_PROFILE | AWS_DEFAULT_PROFILE | \
      AWS_SESSION_TOKEN | AWS_SECURITY_TOKEN | AWS_ACCOUNT_ID)
      unset "$variable"
      ;;
  esac
done
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=/dev/null
export AWS_SHARED_CREDENTIALS_FILE=/dev/null

# The servers of this run: state (PIDs, logs, endpoints) in .test-servers/test-run/,
# apart from servers started by hand with scripts/test-servers.sh start.
export TEST_SERVERS_STATE="$PWD/.test-servers/test-run"
# shellcheck source=scripts/test-servers.sh
source scripts/test-servers.sh
trap 'ts_stop || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy --all-targets --locked -- -D warnings"
cargo clippy --all-targets --locked --quiet -- -D warnings

echo "== test servers: install (.test-servers/)"
ts_install
echo "== chromium (headless browser of tests/dashboard.rs): install if missing"
if ! command -v chromium >/dev/null 2>&1; then
  as_root=(env DEBIAN_FRONTEND=noninteractive)
  [[ $(id -u) -eq 0 ]] || as_root=(sudo -n env DEBIAN_FRONTEND=noninteractive)
  if ! { "${as_root[@]}" apt-get install -y chromium ||
    { "${as_root[@]}" apt-get update && "${as_root[@]}" apt-get install -y chromium; }; }; then
    echo "error: chromium is missing and apt-get could not install it (as root or with sudo):" \
      "tests/dashboard.rs needs it; install Debian's chromium package, then run this again." >&2
    exit 1
  fi
fi
echo "== cargo test --all-targets --locked --no-run (build the tests)"
cargo test --all-targets --locked --no-run
echo "== test servers: start"
ts_start # exports ESM_SIM_TEST_KINESIS_ENDPOINT and ESM_SIM_TEST_MOTO_ENDPOINT
# The tests' own clients take those endpoints explicitly; the daemon's clients find the
# servers through the standard per-service variables, as a user's would.
export AWS_ENDPOINT_URL_KINESIS="$ESM_SIM_TEST_KINESIS_ENDPOINT"
export AWS_ENDPOINT_URL_DYNAMODB_STREAMS="$ESM_SIM_TEST_MOTO_ENDPOINT"
export AWS_ENDPOINT_URL_DYNAMODB="$ESM_SIM_TEST_MOTO_ENDPOINT"
export AWS_ENDPOINT_URL_SQS="$ESM_SIM_TEST_MOTO_ENDPOINT"
export AWS_ENDPOINT_URL_SNS="$ESM_SIM_TEST_MOTO_ENDPOINT"
export AWS_ENDPOINT_URL_S3="$ESM_SIM_TEST_MOTO_ENDPOINT"

echo "== cargo test --all-targets --locked"
status=0
cargo test --all-targets --locked || status=$?
exit "$status"
