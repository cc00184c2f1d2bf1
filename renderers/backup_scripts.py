"""Render the scheduled database backup (pure): one backup run, and the daily scheduler around it.

Both run in the backup container (the database's own Postgres image, so pg_dump has the server's
major version). Connection settings come from libpq's environment (PGHOST, PGPORT, PGUSER,
PGDATABASE, PGPASSWORD); the password is never part of the scripts.

A run writes `litellm-<UTC stamp>.dump` (pg_dump custom format) and `<dump>.sha256` beside it,
checks that pg_restore can read the dump before keeping it, keeps the newest N dumps, and logs
one JSON line per run.
"""

from __future__ import annotations

BACKUP_SCRIPT_PATH = "/usr/local/bin/litellm-backup"
SCHEDULER_SCRIPT_PATH = "/usr/local/bin/litellm-backup-scheduler"
BACKUP_DIR = "/backups"
HEARTBEAT = "/tmp/litellm-backup-heartbeat"
FAILED_MARKER = "/tmp/litellm-backup-failed"

_BACKUP = r'''#!/usr/bin/env bash
# Rendered by the litellm-gateway Pulumi stack: one database backup run.
set -uo pipefail
dir=${BACKUP_DIR:-__BACKUP_DIR__}
keep=${BACKUP_RETENTION:-__RETENTION__}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
name="litellm-$stamp.dump"
partial="$dir/.$name.partial"
started=$(date +%s)

log() {  # log <status> <detail>
  printf '{"time":"%s","event":"litellm-backup","status":"%s","file":"%s","detail":"%s"}\n' \
    "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$1" "$name" "$(printf '%s' "$2" | tr '\n\t\r' '   ' | tr -d '\000-\037' | tr '"\\' "''")"
}
fail() { log failed "$1"; rm -f "$partial" "$partial.err"; exit 1; }

mkdir -p "$dir" || fail "cannot create $dir"
pg_dump --format=custom --compress=6 --no-owner --no-privileges --file="$partial" 2>"$partial.err" \
  || fail "pg_dump: $(tail -n 3 "$partial.err")"
rm -f "$partial.err"
pg_restore --list "$partial" >/dev/null 2>&1 || fail "the dump is not readable by pg_restore"
mv "$partial" "$dir/$name" || fail "cannot move the dump into place"
(cd "$dir" && sha256sum "$name" >"$name.sha256") || fail "cannot write the checksum"

# Retention: keep the newest $keep dumps (names sort by time), with their checksums.
ls -1 "$dir" | grep -E '^litellm-[0-9]{8}T[0-9]{6}Z\.dump$' | sort -r | tail -n +$((keep + 1)) |
  while read -r old; do rm -f "$dir/$old" "$dir/$old.sha256"; done

size=$(stat -c %s "$dir/$name")
log ok "size=${size} seconds=$(( $(date +%s) - started )) kept=$(ls -1 "$dir" | grep -cE '^litellm-.*\.dump$')"
'''

_SCHEDULER = r'''#!/usr/bin/env bash
# Rendered by the litellm-gateway Pulumi stack: run the backup daily at __TIMES__ (UTC).
set -u
times="__TIMES__"
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

while true; do
  due=$(next_run)
  while [ "$(date -u +%s)" -lt "$due" ]; do
    touch "__HEARTBEAT__"
    left=$(( due - $(date -u +%s) ))
    sleep $(( left < 60 ? (left > 0 ? left : 1) : 60 ))
  done
  if "__BACKUP_SCRIPT__"; then rm -f "__FAILED__"; else touch "__FAILED__"; fi
done
'''


def render_backup_script(retention: int) -> str:
    return _BACKUP.replace("__BACKUP_DIR__", BACKUP_DIR).replace("__RETENTION__", str(retention))


def render_scheduler_script(times_utc: tuple[str, ...]) -> str:
    return (_SCHEDULER.replace("__TIMES__", " ".join(times_utc)).replace("__HEARTBEAT__", HEARTBEAT)
            .replace("__BACKUP_SCRIPT__", BACKUP_SCRIPT_PATH).replace("__FAILED__", FAILED_MARKER))


def healthcheck_command() -> list[str]:
    # Unhealthy when the scheduler stopped beating or the last run failed.
    return ["CMD-SHELL", f'test ! -e {FAILED_MARKER} && test $(( $(date +%s) - $(stat -c %Y {HEARTBEAT}) )) -lt 180']
