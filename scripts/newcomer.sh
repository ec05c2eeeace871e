#!/usr/bin/env bash
# What a new user does, from a fresh clone: the README's `npm ci && npm start`, a client (the MCP
# Inspector's CLI, as the README shows it) listing the tools through the gateway, then SIGTERM to
# the `npm start` process. Fails if the gateway does not come up, does not list
# everything.echo, or leaves any process behind after the stop.
#
#   bash scripts/newcomer.sh            # from anywhere inside a checkout; clones its HEAD
#
# Environment: NEWCOMER_KEEP=1 keeps the temporary clone; NEWCOMER_START_TIMEOUT (seconds, default
# 300) bounds the wait for the banner (the first start builds dist/).
set -euo pipefail
# Sandboxed servers run as other uids and must read the clone (the README says so): a checkout
# readable by others, as a deployment would have it.
umask 022

started_at=$SECONDS
repo="$(git rev-parse --show-toplevel)"
tmp="$(mktemp -d /tmp/bastion-newcomer.XXXXXX)"
chmod 755 "$tmp"
npm_pid=""

say() { printf 'newcomer: %s\n' "$*" >&2; }

# Every process whose command line or working directory lies in the temporary clone.
leftovers() {
  local file pid cmd cwd
  for file in /proc/[0-9]*/cmdline; do
    pid="${file#/proc/}"
    pid="${pid%/cmdline}"
    # This script and its own subshells (this function runs in one) are not the gateway's.
    [ "$pid" = "$$" ] || [ "$pid" = "$BASHPID" ] && continue
    cmd="$( { tr '\0' ' ' <"$file"; } 2>/dev/null)" || continue
    cwd="$(readlink "/proc/$pid/cwd" 2>/dev/null)" || cwd=""
    case "$cmd" in
      *"$tmp"*) printf '%s %s\n' "$pid" "$cmd" ;;
      *) case "$cwd" in "$tmp"|"$tmp"/*) printf '%s %s (cwd %s)\n' "$pid" "$cmd" "$cwd" ;; esac ;;
    esac
  done
}

cleanup() {
  local status=$?
  if [ -n "$npm_pid" ] && kill -0 "$npm_pid" 2>/dev/null; then kill -KILL "$npm_pid" 2>/dev/null || true; fi
  # Only processes of this run (their command line or cwd is in the temporary clone), by pid.
  local pid _
  while read -r pid _; do
    [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  done < <(leftovers)
  if [ "$status" -ne 0 ] && [ -f "$tmp/start.err" ]; then
    say "npm start's stderr (last 40 lines):"
    tail -n 40 "$tmp/start.err" >&2 || true
  fi
  # Run as root with CAP_LINUX_IMMUTABLE, the gateway made its audit log (the clone's .bastion/,
  # npm start's state directory) append-only and immutable (audit.appendOnly: auto, the default):
  # the attributes go first, or rm fails. Only there: a walk of the whole clone takes minutes.
  if [ "${NEWCOMER_KEEP:-0}" = 1 ]; then say "kept $tmp"; else
    if [ -d "$tmp/bastion/.bastion" ]; then chattr -R -a -i "$tmp/bastion/.bastion" >/dev/null 2>&1 || true; fi
    rm -rf "$tmp"
  fi
  exit "$status"
}
trap cleanup EXIT

say "cloning $repo into $tmp/bastion"
git clone --quiet "$repo" "$tmp/bastion"
# This shell stays where it is (its working directory would count as a leftover); each command
# runs in the clone from a subshell that execs it.

step=$SECONDS
say "npm ci"
(cd "$tmp/bastion" && exec npm ci --no-audit --no-fund) >"$tmp/npm-ci.log" 2>&1 || { tail -n 40 "$tmp/npm-ci.log" >&2; say "npm ci failed"; exit 1; }
say "npm ci took $((SECONDS - step)) s"

port="$(node -e 'const s = require("node:net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')"
token="$(node -e 'console.log(require("node:crypto").randomBytes(24).toString("base64url"))')"
url="http://127.0.0.1:$port/mcp"

step=$SECONDS
say "npm start on port $port"
(cd "$tmp/bastion" && BASTION_PORT="$port" BASTION_TOKEN="$token" exec npm start) >"$tmp/start.out" 2>"$tmp/start.err" &
npm_pid=$!
deadline=$((SECONDS + ${NEWCOMER_START_TIMEOUT:-300}))
until grep -qF "Bastion is listening on $url" "$tmp/start.err" 2>/dev/null; do
  if ! kill -0 "$npm_pid" 2>/dev/null; then
    wait "$npm_pid" && code=0 || code=$?
    npm_pid=""
    say "npm start exited ($code) before printing its banner"
    exit 1
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then say "no banner within ${NEWCOMER_START_TIMEOUT:-300} s"; exit 1; fi
  sleep 0.5
done
say "gateway up after $((SECONDS - step)) s"

step=$SECONDS
listing="$(cd "$tmp/bastion" && npx --no-install @modelcontextprotocol/inspector-cli --cli "$url" --transport http \
  --header "Authorization: Bearer $token" --method tools/list 2>&1)" || { printf '%s\n' "$listing" >&2; say "the Inspector CLI failed"; exit 1; }
if ! grep -q '"everything.echo"' <<<"$listing"; then
  printf '%s\n' "$listing" | head -n 40 >&2
  say "tools/list through the gateway does not list everything.echo"
  exit 1
fi
say "Inspector CLI tools/list lists $(grep -c '"name":' <<<"$listing") names, everything.echo among them ($((SECONDS - step)) s)"

step=$SECONDS
say "SIGTERM to npm start (pid $npm_pid)"
kill -TERM "$npm_pid"
deadline=$((SECONDS + 15))
while :; do
  npm_alive=0
  kill -0 "$npm_pid" 2>/dev/null && npm_alive=1
  left="$(leftovers)"
  [ "$npm_alive" = 0 ] && [ -z "$left" ] && break
  if [ "$SECONDS" -ge "$deadline" ]; then
    say "15 s after SIGTERM these are still running:"
    [ "$npm_alive" = 1 ] && say "  $npm_pid (npm start)"
    [ -n "$left" ] && printf '  %s\n' "$left" >&2
    exit 1
  fi
  sleep 0.2
done
wait "$npm_pid" && code=0 || code=$?
npm_pid=""
say "npm start exited ($code) and left no process, $((SECONDS - step)) s after SIGTERM"
say "ok in $((SECONDS - started_at)) s"
