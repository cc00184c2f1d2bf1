"""Render the script that pulls, verifies, lists and prunes Ollama models on one GPU host (pure).

The same script serves every action; the action comes as arguments:

    pull <tag> [<expected digest>]   idempotent pull + verify, bounded retries and time
    list                             one machine-readable line per model on the host
    prune <tag>                      `ollama rm`, absent counts as done

`pulumi up` ships it once per host (`install_command`, the script on stdin) to
`$HOME/.litellm-gateway/<environment>/ollama-models.sh`, and each pull runs that file
(`pull_command`, about 150 bytes): a pull's inputs hold its tag and digest, never the script, so a
change of retries or timeouts rewrites one file per host and re-runs no pull. The drift reader sends
the script on stdin (`bash -s -- list`), so it never depends on the installed copy.

Each model is reported as one line:
    OLLAMA_MODEL host=<host> model=<tag> digest=<id> size=<size> status=<present|pulled|listed>
A failure exits non-zero and prints one line naming host, model and cause:
    OLLAMA_PULL_FAILED host=<host> model=<tag> cause=<cause>: <detail>
causes: ollama-not-installed, ollama-not-running, unknown-tag, disk-full, timeout, pull-failed,
not-listed-after-pull, digest-mismatch (plus unreachable-host, reported by the SSH client).
"""

from __future__ import annotations

import re
import shlex

from config.sections.fleet import ModelPullSettings

EXIT_CODES = {
    "ollama-not-installed": 10,
    "ollama-not-running": 11,
    "unknown-tag": 12,
    "disk-full": 13,
    "timeout": 14,
    "pull-failed": 15,
    "not-listed-after-pull": 16,
    "digest-mismatch": 17,
    "prune-failed": 18,
    "script-missing": 19,
}

_SCRIPT = r'''#!/usr/bin/env bash
# Rendered by the litellm-gateway Pulumi stack: pull, verify, list and prune Ollama models.
set -u
HOST_NAME=__HOST__
export OLLAMA_HOST=127.0.0.1:__PORT__
RETRIES=__RETRIES__
BACKOFF=__BACKOFF__
ATTEMPT_TIMEOUT=__ATTEMPT_TIMEOUT__
TOTAL_TIMEOUT=__TOTAL_TIMEOUT__
action=${1:-}
model=${2:-}
expected=${3:-}
expected=${expected#sha256:}
work=$(mktemp -d) || exit 1
trap 'rm -rf "$work"' EXIT

fail() {  # fail <exit code> <cause> <detail>
  echo "OLLAMA_PULL_FAILED host=$HOST_NAME model=${model:--} cause=$2: $3" >&2
  exit "$1"
}
last_error() { grep -v '^pulling\|^verifying\|^writing\|^success' "$1" | tail -n 3 | tr '\n' ' ' | cut -c1-300; }

full_name() { case "$1" in *:*) echo "$1" ;; *) echo "$1:latest" ;; esac; }

check_ollama() {
  command -v ollama >/dev/null 2>&1 || fail __E_NOT_INSTALLED__ ollama-not-installed "no ollama executable on PATH ($PATH)"
  if ! ollama list >"$work/list" 2>"$work/list.err"; then
    fail __E_NOT_RUNNING__ ollama-not-running "ollama list failed: $(last_error "$work/list.err")"
  fi
}

# "<id> <size>" of a model in `ollama list` (NAME ID SIZE MODIFIED; SIZE is two words), or nothing.
lookup() {
  ollama list 2>/dev/null | awk -v m="$(full_name "$1")" 'NR > 1 && $1 == m { print $2, $3 $4; exit }'
}

report() {  # report <tag> <"id size"> <status>
  set -- "$1" $2 "$3"
  echo "OLLAMA_MODEL host=$HOST_NAME model=$1 digest=$2 size=$3 status=$4"
}

matches_expected() { [ -z "$expected" ] || [ "${expected#"$1"}" != "$expected" ] || [ "${1#"$expected"}" != "$1" ]; }

do_pull() {
  [ -n "$model" ] || fail 2 usage "pull needs a model tag"
  check_ollama
  found=$(lookup "$model")
  if [ -n "$found" ] && matches_expected "${found%% *}"; then
    report "$model" "$found" present
    return 0
  fi
  attempt=0
  cause=pull-failed
  while [ "$attempt" -lt "$RETRIES" ]; do
    attempt=$((attempt + 1))
    remaining=$((TOTAL_TIMEOUT - SECONDS))
    if [ "$remaining" -le 0 ]; then cause=timeout; break; fi
    limit=$ATTEMPT_TIMEOUT
    [ "$remaining" -lt "$limit" ] && limit=$remaining
    timeout --kill-after=10 "$limit" ollama pull "$model" >"$work/pull" 2>&1
    status=$?
    if [ "$status" -eq 0 ]; then cause=; break; fi
    if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
      cause=timeout
      echo "attempt $attempt/$RETRIES: ollama pull $model timed out after ${limit}s" >&2
    elif grep -qi 'file does not exist\|manifest unknown\|model .* not found\|invalid model name' "$work/pull"; then
      fail __E_UNKNOWN_TAG__ unknown-tag "the registry has no model '$model': $(last_error "$work/pull")"
    elif grep -qi 'no space left on device' "$work/pull"; then
      fail __E_DISK_FULL__ disk-full "no space left on device while pulling: $(last_error "$work/pull")"
    else
      cause=pull-failed
      echo "attempt $attempt/$RETRIES: ollama pull $model failed: $(last_error "$work/pull")" >&2
    fi
    if [ "$attempt" -lt "$RETRIES" ]; then
      wait_s=$((BACKOFF * (1 << (attempt - 1))))
      remaining=$((TOTAL_TIMEOUT - SECONDS))
      [ "$wait_s" -gt "$remaining" ] && wait_s=$remaining
      [ "$wait_s" -gt 0 ] && sleep "$wait_s"
    fi
  done
  if [ -n "$cause" ]; then
    if [ "$cause" = timeout ]; then
      fail __E_TIMEOUT__ timeout "no successful pull within ${TOTAL_TIMEOUT}s (per attempt ${ATTEMPT_TIMEOUT}s, $attempt attempt(s))"
    fi
    fail __E_PULL_FAILED__ pull-failed "gave up after $attempt attempt(s): $(last_error "$work/pull")"
  fi
  found=$(lookup "$model")
  [ -n "$found" ] || fail __E_NOT_LISTED__ not-listed-after-pull "ollama pull succeeded but ollama list does not show it"
  matches_expected "${found%% *}" || fail __E_DIGEST__ digest-mismatch "pulled ${found%% *}, expected $expected"
  report "$model" "$found" pulled
}

do_list() {
  check_ollama
  awk 'NR > 1 && NF >= 4 { print $1, $2, $3 $4 }' "$work/list" | while read -r name id size; do
    echo "OLLAMA_MODEL host=$HOST_NAME model=$name digest=$id size=$size status=listed"
  done
}

do_prune() {
  [ -n "$model" ] || fail 2 usage "prune needs a model tag"
  check_ollama
  if [ -z "$(lookup "$model")" ]; then
    echo "OLLAMA_PRUNED host=$HOST_NAME model=$model status=absent"
    return 0
  fi
  ollama rm "$model" >"$work/rm" 2>&1 || fail __E_PRUNE__ prune-failed "ollama rm failed: $(last_error "$work/rm")"
  echo "OLLAMA_PRUNED host=$HOST_NAME model=$model status=removed"
}

case "$action" in
  pull) do_pull ;;
  list) do_list ;;
  prune) do_prune ;;
  *) echo "usage: bash -s -- pull <tag> [digest] | list | prune <tag>" >&2; exit 2 ;;
esac
'''


def render_host_script(host_name: str, ollama_port: int, pulls: ModelPullSettings) -> str:
    replacements = {
        "__HOST__": shlex.quote(host_name),
        "__PORT__": str(ollama_port),
        "__RETRIES__": str(pulls.retries),
        "__BACKOFF__": str(pulls.backoff_seconds),
        "__ATTEMPT_TIMEOUT__": str(pulls.attempt_timeout_seconds),
        "__TOTAL_TIMEOUT__": str(pulls.timeout_seconds),
        "__E_NOT_INSTALLED__": str(EXIT_CODES["ollama-not-installed"]),
        "__E_NOT_RUNNING__": str(EXIT_CODES["ollama-not-running"]),
        "__E_UNKNOWN_TAG__": str(EXIT_CODES["unknown-tag"]),
        "__E_DISK_FULL__": str(EXIT_CODES["disk-full"]),
        "__E_TIMEOUT__": str(EXIT_CODES["timeout"]),
        "__E_PULL_FAILED__": str(EXIT_CODES["pull-failed"]),
        "__E_NOT_LISTED__": str(EXIT_CODES["not-listed-after-pull"]),
        "__E_DIGEST__": str(EXIT_CODES["digest-mismatch"]),
        "__E_PRUNE__": str(EXIT_CODES["prune-failed"]),
    }
    script = _SCRIPT
    for marker, value in replacements.items():
        script = script.replace(marker, value)
    return script


def script_dir(environment: str) -> str:
    """The host's directory for this stack, as a shell word ($HOME expands on the host)."""
    assert re.fullmatch(r"[a-z][a-z0-9-]{0,19}", environment), environment
    return f'"$HOME/.litellm-gateway/{environment}"'


def script_path(environment: str) -> str:
    return script_dir(environment)[:-1] + '/ollama-models.sh"'


def install_command(environment: str, authorized_key: str | None = None) -> str:
    """Write the script from stdin to the stack's directory on the host (atomically, mode 0700), and
    authorize the stack's pull key (one `authorized_keys` line, added once)."""
    directory, path = script_dir(environment), script_path(environment)
    lines = [
        "set -eu", "umask 077",
        f"mkdir -p {directory}",
        f"cat > {path[:-1]}.new\"",
        f"chmod 700 {path[:-1]}.new\"",
        f"mv -f {path[:-1]}.new\" {path}",
    ]
    if authorized_key is not None:
        key = shlex.quote(authorized_key)
        lines += [
            'mkdir -p "$HOME/.ssh"',
            'touch "$HOME/.ssh/authorized_keys"',
            f'grep -qxF {key} "$HOME/.ssh/authorized_keys" || printf \'%s\\n\' {key} >> "$HOME/.ssh/authorized_keys"',
        ]
    lines.append(f"echo OLLAMA_SCRIPT_INSTALLED path={path}")
    return "\n".join(lines)


def pull_command(tag: str, digest: str | None, *, environment: str, host: str) -> str:
    """Run the installed script's pull; a host that lost the script (reinstalled) says how to ship it again."""
    path = script_path(environment)
    missing = (f"OLLAMA_PULL_FAILED host={host} model={tag} cause=script-missing: {path} is not on the host "
               f"(reinstalled?); run: pulumi up --target-replace <URN of models-install-{host}>")
    args = "pull " + shlex.quote(tag) + (" " + shlex.quote(digest) if digest else "")
    return (f"[ -r {path} ] || {{ echo {shlex.quote(missing)} >&2; exit {EXIT_CODES['script-missing']}; }}; "
            f"bash {path} {args}")


def prune_command(tag: str) -> str:
    """The reader runs prune with the script on stdin."""
    return "bash -s -- prune " + shlex.quote(tag)


def stdin_command(action: str, *args: str | None) -> str:
    """The script's action with the script itself on stdin (the drift reader and the tests); empty
    arguments (an unpinned digest) are left out."""
    return " ".join(["bash -s --", action, *(shlex.quote(a) for a in args if a)])


LIST_COMMAND = "bash -s -- list"
