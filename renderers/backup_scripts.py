"""Render the scheduled database backup (pure): one backup run, and the daily scheduler around it.

Both run in the backup container (the database's own Postgres image, so pg_dump has the server's
major version). Connection settings come from libpq's environment (PGHOST, PGPORT, PGUSER,
PGDATABASE, PGPASSWORD); the password is never part of the scripts.

A run writes `litellm-<stack>-<UTC stamp>.dump` (pg_dump custom format; the stack in the name lets
a restore refuse another stack's dump) and `<dump>.sha256` beside it, checks that pg_restore can
read the dump before keeping it, keeps the newest N dumps, and logs one JSON line per run. Dumps
hold key hashes and e-mail addresses: they are written 0600 in a 0700 directory by the `postgres`
user (the scheduler starts as root only to hand the directory over, then drops to it).
"""

from __future__ import annotations

BACKUP_SCRIPT_PATH = "/usr/local/bin/litellm-backup"
SCHEDULER_SCRIPT_PATH = "/usr/local/bin/litellm-backup-scheduler"
BACKUP_DIR = "/backups"
OWNED_MARKER = ".litellm-gateway-backups"   # the stack's mark on a backup directory it took over
HEARTBEAT = "/tmp/litellm-backup-heartbeat"
FAILED_MARKER = "/tmp/litellm-backup-failed"

_BACKUP = r'''#!/usr/bin/env bash
# Rendered by the litellm-gateway Pulumi stack: one database backup run.
set -uo pipefail
umask 077
dir=${BACKUP_DIR:-__BACKUP_DIR__}
keep=${BACKUP_RETENTION:-__RETENTION__}
stack=__STACK__
stamp=$(date -u +%Y%m%dT%H%M%SZ)
name="litellm-$stack-$stamp.dump"
partial="$dir/.$name.partial"
started=$(date +%s)

log() {  # log <status> <detail>
  printf '{"time":"%s","event":"litellm-backup","status":"%s","file":"%s","detail":"%s"}\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$name" "$(printf '%s' "$2" | tr '\n\t\r' '   ' | tr -d '\000-\037' | tr '"\\' "''")"
}
fail() { log failed "$1"; rm -f "$partial" "$partial.err"; exit 1; }

mkdir -p "$dir" && chmod 0700 "$dir" || fail "cannot create $dir"
[ -e "$dir/$name" ] && fail "$name exists already (two runs in one second)"
pg_dump --format=custom --compress=6 --no-owner --no-privileges --file="$partial" 2>"$partial.err" \
  || fail "pg_dump: $(tail -n 3 "$partial.err")"
rm -f "$partial.err"
pg_restore --list "$partial" >/dev/null 2>&1 || fail "the dump is not readable by pg_restore"
mv "$partial" "$dir/$name" || fail "cannot move the dump into place"
(cd "$dir" && sha256sum "$name" >"$name.sha256") || fail "cannot write the checksum"

# Retention: keep the newest $keep dumps of this stack (names sort by time), with their checksums;
# dumps named before the stack was part of the name count too.
ls -1 "$dir" | grep -E "^litellm-($stack-)?[0-9]{8}T[0-9]{6}Z\.dump\$" | sed -E "s/^litellm-($stack-)?([0-9]{8}T[0-9]{6}Z)\.dump\$/\2 &/" |
  sort -r | tail -n +$((keep + 1)) | while read -r _ old; do rm -f "$dir/$old" "$dir/$old.sha256"; done

size=$(stat -c %s "$dir/$name")
log ok "size=${size} seconds=$(( $(date +%s) - started )) kept=$(ls -1 "$dir" | grep -cE '^litellm-.*\.dump$')"
'''

_SCHEDULER = r'''#!/usr/bin/env bash
# Rendered by the litellm-gateway Pulumi stack: run the backup daily at __TIMES__ (UTC).
set -u
times="__TIMES__"
dir=${BACKUP_DIR:-__BACKUP_DIR__}
if [ "$(id -u)" = 0 ]; then
  # Hand the backup directory to postgres, then run as postgres: dumps are never written by root.
  # Only a directory that is the stack's own: empty, marked by an earlier run, or holding nothing
  # but this stack's dumps. Anything else (a home directory, /etc/ssh, another program's data) is
  # never chowned: the scheduler stops and says why.
  mkdir -p "$dir" || { echo '{"event":"litellm-backup-scheduler","status":"failed","detail":"cannot create the backup directory"}'; exit 1; }
  marker="$dir/__MARKER__"
  if [ ! -e "$marker" ]; then
    foreign=$(ls -A "$dir" | grep -vE '^(litellm-[a-z0-9-]*[0-9]{8}T[0-9]{6}Z\.dump(\.sha256)?|\.litellm-[^/]*\.partial(\.err)?)$' | head -n 1)
    if [ -n "$foreign" ]; then
      echo "{\"event\":\"litellm-backup-scheduler\",\"status\":\"failed\",\"detail\":\"the backup directory holds files this stack did not write (for example $foreign); it is not taken over: give backups.hostPath an empty directory of its own\"}"
      exit 1
    fi
  fi
  touch "$marker" && chown postgres:postgres "$dir" "$marker" && chmod 0700 "$dir" || {
    echo '{"event":"litellm-backup-scheduler","status":"failed","detail":"cannot prepare the backup directory"}'; exit 1; }
  if command -v gosu >/dev/null 2>&1; then exec gosu postgres bash "$0" "$@"; fi
  if command -v su-exec >/dev/null 2>&1; then exec su-exec postgres bash "$0" "$@"; fi
  echo '{"event":"litellm-backup-scheduler","status":"failed","detail":"neither gosu nor su-exec to drop root"}'; exit 1
fi
echo "{\"event\":\"litellm-backup-scheduler\",\"status\":\"started\",\"times_utc\":\"$times\"}"

next_run() {  # seconds since the epoch of the next scheduled time
  now=$(date -u +%s); best=
  for t in $times; do
    at=$(date -u -d "today $t" +%s)
    [ "$at" -le "$now" ] && at=$(date -u -d "tomorrow $t" +%s)
    if [ -z "$best" ] || [ "$at" -lt "$best" ]; then best=$at; fi
  done
  echo "$best"
}

# `docker stop` (SIGTERM to this PID 1): a backup that is running finishes first (bash runs the trap
# once it returns), a wait between runs ends at once; without the trap PID 1 ignores SIGTERM and is
# killed after the stop timeout, possibly in the middle of a dump.
trap 'echo "{\"event\":\"litellm-backup-scheduler\",\"status\":\"stopped\"}"; exit 0' TERM INT
while true; do
  due=$(next_run)
  while [ "$(date -u +%s)" -lt "$due" ]; do
    touch "__HEARTBEAT__"
    left=$(( due - $(date -u +%s) ))
    sleep $(( left < 60 ? (left > 0 ? left : 1) : 60 )) &
    wait $!
  done
  if "__BACKUP_SCRIPT__"; then rm -f "__FAILED__"; else touch "__FAILED__"; fi
done
'''


def render_backup_script(retention: int, stack: str) -> str:
    # `stack` is a validated environment name ([a-z][a-z0-9-]*): safe in the script and in a regex.
    return (_BACKUP.replace("__BACKUP_DIR__", BACKUP_DIR).replace("__RETENTION__", str(retention))
            .replace("__STACK__", stack))


def render_scheduler_script(times_utc: tuple[str, ...]) -> str:
    return (_SCHEDULER.replace("__TIMES__", " ".join(times_utc)).replace("__HEARTBEAT__", HEARTBEAT)
            .replace("__BACKUP_SCRIPT__", BACKUP_SCRIPT_PATH).replace("__FAILED__", FAILED_MARKER)
            .replace("__BACKUP_DIR__", BACKUP_DIR).replace("__MARKER__", OWNED_MARKER))


def healthcheck_command() -> list[str]:
    # Unhealthy when the scheduler stopped beating or the last run failed.
    return ["CMD-SHELL", f'test ! -e {FAILED_MARKER} && test $(( $(date +%s) - $(stat -c %Y {HEARTBEAT}) )) -lt 180']
