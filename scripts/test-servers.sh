#!/usr/bin/env bash
# The local AWS servers that the integration tests run against: kinesis-local (Kinesis)
# and moto in server mode (SQS, SNS, DynamoDB, DynamoDB Streams, a second Kinesis).
# scripts/test.sh sources this file and calls its functions; it also runs on its own:
#
#   scripts/test-servers.sh install   # into .test-servers/ (git-ignored); a no-op when done
#   scripts/test-servers.sh start     # install, then start both on 127.0.0.1, free ports
#   scripts/test-servers.sh stop      # stop what start started
#
# install: a Python venv with moto[server], one with the aws CLI and an npm prefix with
#   kinesis-local, all at pinned versions; a marker file in each records the pin, and a changed pin reinstalls.
# start: three free ports from the OS (moto; kinesis-local plain and TLS), both servers
#   started with logs in STATE/*.log, ready when a cheap call answers (30 s at most),
#   then checked to listen on 127.0.0.1 only. PIDs go to STATE/pids, the endpoints to
#   STATE/endpoints.env (ESM_SIM_TEST_KINESIS_ENDPOINT, ESM_SIM_TEST_MOTO_ENDPOINT, and the
#   clients ESM_SIM_TEST_PYTHON with boto3 and ESM_SIM_TEST_AWS_CLI) and
#   into the environment of a shell that sourced this. A start first stops what an
#   earlier start with the same STATE left running.
# stop: kill the servers recorded in STATE/pids and their children, wait until they are gone.
#
# STATE is $TEST_SERVERS_STATE, by default .test-servers/; scripts/test.sh uses
# .test-servers/test-run/, so its servers and ones started by hand never meet. Both
# start and install take a lock (flock): a second start with the same STATE waits until
# the shell that started the first exits (scripts/test.sh holds it for its whole run).
#
# Needs python3 with venv (Debian: python3-venv), node and npm (Debian: nodejs, npm).

TEST_SERVERS_MOTO_PIN='moto[server]==5.2.5'
TEST_SERVERS_MOTO_VERSION='5.2.5'
TEST_SERVERS_KINESIS_LOCAL_VERSION='0.6.2'
# The aws CLI (v1, from PyPI) in a venv of its own (its botocore pin must not move moto's):
# the tests run the docs' `aws lambda ... --endpoint-url` commands with it.
TEST_SERVERS_AWSCLI_PIN='awscli==1.46.3'
TEST_SERVERS_READY_TIMEOUT="${TEST_SERVERS_READY_TIMEOUT:-30}" # seconds

TEST_SERVERS_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TEST_SERVERS_DIR="$TEST_SERVERS_ROOT/.test-servers"
TEST_SERVERS_VENV="$TEST_SERVERS_DIR/moto"
TEST_SERVERS_AWSCLI="$TEST_SERVERS_DIR/awscli"
TEST_SERVERS_NPM="$TEST_SERVERS_DIR/kinesis-local"
TEST_SERVERS_KINESIS_MAIN="$TEST_SERVERS_NPM/node_modules/kinesis-local/main.js"
TEST_SERVERS_STATE="${TEST_SERVERS_STATE:-$TEST_SERVERS_DIR}"

ts_say() { echo "test-servers: $*"; }
ts_fail() { echo "test-servers: error: $*" >&2; return 1; }

ts_now() { echo "${EPOCHREALTIME:-$(date +%s.%N)}"; }
ts_since() { awk -v a="$1" -v b="$(ts_now)" 'BEGIN { printf "%.1f", b - a }'; }

# Python for the helpers below: the venv's once installed (no pyenv shim in the way).
ts_python() {
  if [[ -x "$TEST_SERVERS_VENV/bin/python" ]]; then
    "$TEST_SERVERS_VENV/bin/python" "$@"
  else
    python3 "$@"
  fi
}

# ts_lock FILE VAR: an exclusive flock on FILE through a new fd kept in VAR, waiting (and
# saying so) while another process holds it. Held until this shell exits or ts_unlock VAR.
ts_lock() {
  local file="$1" var="$2" fd
  [[ -z "${!var:-}" ]] || return 0
  command -v flock >/dev/null 2>&1 || return 0
  mkdir -p "$(dirname "$file")" || return 1
  exec {fd}>"$file" || return 1
  printf -v "$var" '%s' "$fd"
  if ! flock -n "$fd"; then
    ts_say "${file#"$TEST_SERVERS_ROOT/"} is held by another run: waiting until it ends"
    flock "$fd" || return 1
  fi
}

ts_unlock() {
  local var="$1"
  local fd="${!var:-}"
  [[ -n "$fd" ]] || return 0
  eval "exec $fd>&-"
  printf -v "$var" '%s' ""
}

# ---------------------------------------------------------------------------- install

ts_need_python_venv() {
  command -v python3 >/dev/null 2>&1 ||
    ts_fail "python3 not found: install Python 3 with venv (Debian: apt-get install python3 python3-venv)" || return 1
  python3 -c 'import venv, ensurepip' >/dev/null 2>&1 ||
    ts_fail "python3 has no venv/ensurepip: install it (Debian: apt-get install python3-venv)" || return 1
}

ts_need_node() {
  command -v node >/dev/null 2>&1 ||
    ts_fail "node not found: install Node.js 20 or later (Debian: apt-get install nodejs)" || return 1
}

ts_need_npm() {
  command -v npm >/dev/null 2>&1 ||
    ts_fail "npm not found: install it (Debian: apt-get install npm)" || return 1
}

# ts_install_venv DIR PIN EXECUTABLE CHECK...: a venv at DIR with PIN pip-installed, unless
# its marker says PIN is there and CHECK (a command) succeeds: a venv copied or moved from
# elsewhere keeps its marker but its scripts' interpreter lines point at the old place, so
# the check runs what the tests run. CHECK must also succeed after a fresh install.
ts_install_venv() {
  local dir="$1" pin="$2" executable="$3"
  shift 3
  local marker="$dir/.esm-sim-pin"
  if [[ -f "$marker" && "$(<"$marker")" == "$pin" && -x "$dir/bin/$executable" ]] &&
    "$@" >/dev/null 2>&1; then
    return 0
  fi
  ts_need_python_venv || return 1
  local t0
  t0="$(ts_now)"
  ts_say "installing $pin into ${dir#"$TEST_SERVERS_ROOT/"}"
  rm -rf "$dir"
  python3 -m venv "$dir" || ts_fail "python3 -m venv failed (Debian: apt-get install python3-venv)" || return 1
  "$dir/bin/python" -m pip install --quiet --disable-pip-version-check "$pin" ||
    ts_fail "pip install $pin failed" || return 1
  "$@" >/dev/null || ts_fail "$pin does not work after the install: $*" || return 1
  echo "$pin" >"$marker"
  ts_say "installed $pin in $(ts_since "$t0") s"
}

ts_install_moto() {
  ts_install_venv "$TEST_SERVERS_VENV" "$TEST_SERVERS_MOTO_PIN" moto_server \
    "$TEST_SERVERS_VENV/bin/python" -c "import moto, flask; assert moto.__version__ == '$TEST_SERVERS_MOTO_VERSION', moto.__version__"
}

ts_install_awscli() {
  ts_install_venv "$TEST_SERVERS_AWSCLI" "$TEST_SERVERS_AWSCLI_PIN" aws \
    "$TEST_SERVERS_AWSCLI/bin/aws" --version
}

ts_install_kinesis_local() {
  local marker="$TEST_SERVERS_NPM/.esm-sim-pin" pin="kinesis-local@$TEST_SERVERS_KINESIS_LOCAL_VERSION"
  if [[ -f "$marker" && "$(<"$marker")" == "$pin" && -f "$TEST_SERVERS_KINESIS_MAIN" ]]; then
    return 0
  fi
  ts_need_node || return 1
  ts_need_npm || return 1
  local t0
  t0="$(ts_now)"
  ts_say "installing $pin into ${TEST_SERVERS_NPM#"$TEST_SERVERS_ROOT/"}"
  rm -rf "$TEST_SERVERS_NPM"
  mkdir -p "$TEST_SERVERS_NPM"
  echo '{ "private": true }' >"$TEST_SERVERS_NPM/package.json"
  (cd "$TEST_SERVERS_NPM" && npm install --no-audit --no-fund --save-exact --loglevel=error "$pin" >/dev/null) ||
    ts_fail "npm install $pin failed" || return 1
  local got
  got="$(node -p 'require(process.argv[1]).version' "$TEST_SERVERS_NPM/node_modules/kinesis-local/package.json")" ||
    ts_fail "kinesis-local is missing after npm install" || return 1
  [[ "$got" == "$TEST_SERVERS_KINESIS_LOCAL_VERSION" ]] ||
    ts_fail "npm installed kinesis-local $got, not $TEST_SERVERS_KINESIS_LOCAL_VERSION" || return 1
  echo "$pin" >"$marker"
  ts_say "installed $pin in $(ts_since "$t0") s"
}

# Installs what is missing; a second run with everything present does nothing.
ts_install() {
  ts_lock "$TEST_SERVERS_DIR/install.lock" TS_INSTALL_LOCK_FD || return 1
  local status=0
  { ts_install_moto && ts_install_awscli && ts_install_kinesis_local && ts_need_node; } || status=$?
  ts_unlock TS_INSTALL_LOCK_FD
  return "$status"
}

# ---------------------------------------------------------------------------- helpers

# The Python helpers: free ports, readiness, loopback check.
ts_helper() {
  ts_python - "$@" <<'PY'
import datetime, json, os, socket, sys, time, urllib.error, urllib.request


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def ports(count):
    socks = []
    for _ in range(int(count)):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    print(" ".join(str(s.getsockname()[1]) for s in socks))


def probe(kind, port):
    now = datetime.datetime.now(datetime.timezone.utc)
    url = f"http://127.0.0.1:{port}/"
    if kind == "moto":
        request = urllib.request.Request(url + "moto-api/", method="GET")
    else:
        request = urllib.request.Request(
            url,
            data=b"{}",
            method="POST",
            headers={
                "X-Amz-Target": "Kinesis_20131202.ListStreams",
                "Content-Type": "application/x-amz-json-1.1",
                # kinesis-local answers 400 MissingAuthenticationToken without one; it
                # does not check the signature.
                "X-Amz-Date": now.strftime("%Y%m%dT%H%M%SZ"),
                "Authorization": "AWS4-HMAC-SHA256 Credential=test/"
                + now.strftime("%Y%m%d")
                + "/us-east-1/kinesis/aws4_request, SignedHeaders=host;x-amz-date, Signature=0",
            },
        )
    with urllib.request.urlopen(request, timeout=2) as response:
        body = response.read()
        if kind == "kinesis-local":
            json.loads(body)["StreamNames"]


# wait TIMEOUT NAME:PID:KIND:PORT:LAUNCHED ... -> one line per server, exit 1 if any failed
def wait(timeout, *servers):
    pending = {}
    for spec in servers:
        name, pid, kind, port, launched = spec.split(":")
        pending[name] = (int(pid), kind, int(port), float(launched))
    deadline = time.monotonic() + float(timeout)
    errors = {name: "no answer yet" for name in pending}
    failed = False
    while pending:
        for name, (pid, kind, port, launched) in list(pending.items()):
            try:
                probe(kind, port)
            except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
                errors[name] = f"{type(e).__name__}: {e}"
                if not alive(pid):
                    print(f"FAILED {name} exited before it answered ({errors[name]})")
                    del pending[name]
                    failed = True
                continue
            print(f"ready {name} in {time.time() - launched:.1f} s")
            del pending[name]
        if pending and time.monotonic() > deadline:
            for name in pending:
                print(f"FAILED {name} not ready after {timeout} s ({errors[name]})")
            return 1
        if pending:
            time.sleep(0.1)
    return 1 if failed else 0


def descendants(pid):
    children = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def listeners(pids):
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            pass
    found = []
    for table, family in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 6)):
        try:
            with open(table) as f:
                lines = f.readlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A = LISTEN
                continue
            address, port = fields[1].split(":")
            raw = bytes.fromhex(address)
            if family == 4:
                host = socket.inet_ntop(socket.AF_INET, raw[::-1])
            else:
                words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
                host = socket.inet_ntop(socket.AF_INET6, words)
            found.append((host, int(port, 16)))
    return sorted(set(found))


def show(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def is_loopback(host):
    return host.startswith("127.") or host == "::1" or host.startswith("::ffff:127.")


# descendants PID -> PID and all its descendants, one per line
# loopback NAME:PID:PORT[,PORT...] ... -> each server's TCP listeners; exit 1 unless every
# listener is on loopback and every expected port is listening (waits up to 5 s for those)
def loopback(*servers):
    ok = True
    for spec in servers:
        name, pid, expected = spec.split(":")
        expected = {int(p) for p in expected.split(",")}
        deadline = time.monotonic() + 5
        while True:
            found = listeners(descendants(int(pid)))
            exposed = [show(h, p) for h, p in found if not is_loopback(h)]
            missing = expected - {p for _, p in found}
            if exposed or not missing or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        shown = ", ".join(show(h, p) for h, p in found) or "nothing"
        if exposed:
            print(f"FAILED {name} listens beyond loopback: {', '.join(exposed)} (all: {shown})")
            ok = False
        elif missing:
            print(f"FAILED {name} is not listening on port(s) {sorted(missing)} (listens on {shown})")
            ok = False
        else:
            print(f"loopback-only {name}: {shown}")
    return 0 if ok else 1


command, args = sys.argv[1], sys.argv[2:]
if command == "ports":
    ports(*args)
elif command == "wait":
    sys.exit(wait(*args))
elif command == "descendants":
    print("\n".join(str(p) for p in descendants(int(args[0]))))
elif command == "loopback":
    sys.exit(loopback(*args))
else:
    sys.exit(f"unknown helper command {command}")
PY
}

ts_log_tail() {
  local log="$TEST_SERVERS_STATE/$1.log"
  echo "---- last lines of ${log#"$TEST_SERVERS_ROOT/"}:" >&2
  tail -n 40 "$log" >&2 2>/dev/null || true
  echo "----" >&2
}

# Is PID alive and one of ours (started in STATE, or running from .test-servers/)? Guards
# against killing an unrelated process that got a recorded PID after a reboot.
ts_is_ours() {
  local pid="$1" cwd cmdline
  [[ -r "/proc/$pid/cmdline" ]] || return 1
  cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null)" || cwd=""
  [[ -n "$cwd" && "$cwd" == "$(cd "$TEST_SERVERS_STATE" 2>/dev/null && pwd -P)" ]] && return 0
  cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
  [[ "$cmdline" == *"$TEST_SERVERS_DIR/"* ]]
}

# Starts one server in the background, in STATE, under a small bash wrapper that stays to
# reap it (so a stopped server never lingers as a zombie, whoever its parent is). The
# server gets no file descriptor of ours but its log (no lock, no caller's pipe). Sets
# TS_LAUNCHED_PID (the server) and TS_LAUNCHED_WRAPPER.
ts_launch() {
  local name="$1"
  shift
  local pidfile="$TEST_SERVERS_STATE/$name.pid"
  rm -f "$pidfile"
  (
    fds=(/proc/"$BASHPID"/fd/*)
    for fd in "${fds[@]##*/}"; do
      if [[ "$fd" =~ ^[0-9]+$ ]] && ((fd > 2)); then eval "exec $fd>&-" 2>/dev/null; fi
    done
    cd "$TEST_SERVERS_STATE" || exit 1
    "$@" </dev/null >"$TEST_SERVERS_STATE/$name.log" 2>&1 &
    echo "$!" >"$pidfile.tmp"
    mv "$pidfile.tmp" "$pidfile"
    wait "$!"
  ) </dev/null >/dev/null 2>&1 &
  TS_LAUNCHED_WRAPPER="$!"
  local i
  for ((i = 0; i < 100; i++)); do
    [[ -s "$pidfile" ]] && break
    sleep 0.02
  done
  TS_LAUNCHED_PID="$(cat "$pidfile" 2>/dev/null)" || ts_fail "could not start $name" || return 1
  rm -f "$pidfile"
}

# ---------------------------------------------------------------------------- start

# Starts both servers on 127.0.0.1, waits until they answer, checks they listen on
# loopback only, records their PIDs and exports their endpoints. Retries with new ports
# (3 tries) when a port was taken between choosing it and binding it.
ts_start() {
  [[ -x "$TEST_SERVERS_VENV/bin/moto_server" && -f "$TEST_SERVERS_KINESIS_MAIN" ]] ||
    ts_fail "servers not installed: run scripts/test-servers.sh install" || return 1
  ts_need_node || return 1
  mkdir -p "$TEST_SERVERS_STATE" || return 1
  ts_lock "$TEST_SERVERS_STATE/lock" TS_STATE_LOCK_FD || return 1
  local pids="$TEST_SERVERS_STATE/pids"
  if [[ -s "$pids" ]]; then
    ts_say "an earlier start left ${pids#"$TEST_SERVERS_ROOT/"}: stopping what still runs of it"
    ts_stop || return 1
  fi

  local attempt moto_port kinesis_port kinesis_tls_port moto_pid kinesis_pid status report
  for attempt in 1 2 3; do
    read -r moto_port kinesis_port kinesis_tls_port < <(ts_helper ports 3) ||
      ts_fail "could not get free ports from the OS" || return 1

    local moto_launched kinesis_launched
    moto_launched="$(ts_now)"
    ts_launch moto "$TEST_SERVERS_VENV/bin/moto_server" -H 127.0.0.1 -p "$moto_port" || return 1
    moto_pid="$TS_LAUNCHED_PID"
    echo "moto $moto_pid $TS_LAUNCHED_WRAPPER $moto_port" >"$pids"

    kinesis_launched="$(ts_now)"
    ts_launch kinesis-local env -u AWS_ACCOUNT_ID \
      AWS_REGION=us-east-1 \
      KINESIS_MOCK_CERT_PATH="$TEST_SERVERS_NPM/node_modules/kinesis-local/server.json" \
      KINESIS_MOCK_PLAIN_PORT="$kinesis_port" \
      KINESIS_MOCK_TLS_PORT="$kinesis_tls_port" \
      SHOULD_PERSIST_DATA=false LOAD_DATA_IF_EXISTS=false SHARD_LIMIT=1000 \
      node -r "$TEST_SERVERS_ROOT/scripts/loopback.js" "$TEST_SERVERS_KINESIS_MAIN" || { ts_stop; return 1; }
    kinesis_pid="$TS_LAUNCHED_PID"
    echo "kinesis-local $kinesis_pid $TS_LAUNCHED_WRAPPER $kinesis_port $kinesis_tls_port" >>"$pids"

    status=0
    report="$(ts_helper wait "$TEST_SERVERS_READY_TIMEOUT" \
      "moto:$moto_pid:moto:$moto_port:$moto_launched" \
      "kinesis-local:$kinesis_pid:kinesis-local:$kinesis_port:$kinesis_launched")" || status=$?
    [[ -n "$report" ]] && sed 's/^/test-servers: /' <<<"$report"
    [[ $status -eq 0 ]] && break

    local name retry=no
    for name in moto kinesis-local; do
      if grep -q "^FAILED $name " <<<"$report"; then
        ts_log_tail "$name"
        grep -qiE 'address already in use|EADDRINUSE' "$TEST_SERVERS_STATE/$name.log" 2>/dev/null && retry=yes
      fi
    done
    ts_stop
    if [[ $retry == yes && $attempt -lt 3 ]]; then
      ts_say "a port was taken meanwhile: trying again with new ports"
      continue
    fi
    ts_fail "the test servers did not start (logs in ${TEST_SERVERS_STATE#"$TEST_SERVERS_ROOT/"}/)"
    return 1
  done

  status=0
  report="$(ts_helper loopback "moto:$moto_pid:$moto_port" \
    "kinesis-local:$kinesis_pid:$kinesis_port,$kinesis_tls_port")" || status=$?
  [[ -n "$report" ]] && sed 's/^/test-servers: /' <<<"$report"
  if [[ $status -ne 0 ]]; then
    ts_stop
    ts_fail "a test server listens on more than 127.0.0.1: stopped them"
    return 1
  fi

  ESM_SIM_TEST_KINESIS_ENDPOINT="http://127.0.0.1:$kinesis_port"
  ESM_SIM_TEST_MOTO_ENDPOINT="http://127.0.0.1:$moto_port"
  # The clients the tests drive the Lambda API with: the moto venv's Python has boto3
  # (moto needs it), and the aws CLI.
  ESM_SIM_TEST_PYTHON="$TEST_SERVERS_VENV/bin/python"
  ESM_SIM_TEST_AWS_CLI="$TEST_SERVERS_AWSCLI/bin/aws"
  export ESM_SIM_TEST_KINESIS_ENDPOINT ESM_SIM_TEST_MOTO_ENDPOINT ESM_SIM_TEST_PYTHON ESM_SIM_TEST_AWS_CLI
  {
    echo "export ESM_SIM_TEST_KINESIS_ENDPOINT=$ESM_SIM_TEST_KINESIS_ENDPOINT"
    echo "export ESM_SIM_TEST_MOTO_ENDPOINT=$ESM_SIM_TEST_MOTO_ENDPOINT"
    echo "export ESM_SIM_TEST_PYTHON=$ESM_SIM_TEST_PYTHON"
    echo "export ESM_SIM_TEST_AWS_CLI=$ESM_SIM_TEST_AWS_CLI"
  } >"$TEST_SERVERS_STATE/endpoints.env"
  ts_say "kinesis-local (pid $kinesis_pid): ESM_SIM_TEST_KINESIS_ENDPOINT=$ESM_SIM_TEST_KINESIS_ENDPOINT"
  ts_say "moto          (pid $moto_pid): ESM_SIM_TEST_MOTO_ENDPOINT=$ESM_SIM_TEST_MOTO_ENDPOINT"
}

# ---------------------------------------------------------------------------- stop

# Stops the recorded servers and their children: SIGTERM, then SIGKILL to what is left
# after about 5 s.
ts_stop() {
  local pids="$TEST_SERVERS_STATE/pids"
  [[ -f "$pids" ]] || return 0
  local name pid wrapper rest targets=() wrappers=() p
  while read -r name pid wrapper rest; do
    [[ -n "${pid:-}" ]] || continue
    wrappers+=("$wrapper")
    ts_is_ours "$pid" || continue
    while read -r p; do
      [[ -n "$p" ]] && targets+=("$p")
    done < <(ts_helper descendants "$pid")
  done <"$pids"

  if ((${#targets[@]})); then
    kill -TERM "${targets[@]}" 2>/dev/null || true
    local i left
    for ((i = 0; i < 200; i++)); do
      left=()
      for p in "${targets[@]}"; do
        [[ -e "/proc/$p" ]] && [[ "$(cut -d')' -f2 "/proc/$p/stat" 2>/dev/null | awk '{ print $1 }')" != Z ]] && left+=("$p")
      done
      ((${#left[@]})) || break
      [[ $i -eq 100 ]] && kill -KILL "${left[@]}" 2>/dev/null || true
      sleep 0.05
    done
    if ((${#left[@]})); then
      ts_fail "could not stop pid(s) ${left[*]}"
      return 1
    fi
  fi
  # Reap the wrappers if they are this shell's children (a no-op otherwise).
  for p in "${wrappers[@]}"; do
    wait "$p" 2>/dev/null || true
  done
  rm -f "$pids" "$TEST_SERVERS_STATE/endpoints.env"
  ((${#targets[@]})) && ts_say "stopped the test servers"
  return 0
}

# ---------------------------------------------------------------------------- command line

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  set -euo pipefail
  case "${1:-}" in
    install) ts_install ;;
    start) ts_install && ts_start ;;
    stop) ts_stop ;;
    *)
      echo "usage: $0 install|start|stop" >&2
      exit 2
      ;;
  esac
fi
