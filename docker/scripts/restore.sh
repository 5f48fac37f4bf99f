#!/usr/bin/env bash
# Restores a backup made by backup.sh into fms_server's database. Stop the server first.
#   SQLite:     the current fms.db (with its -wal/-shm) is kept as fms.db.before-restore-<time>,
#               the backup is integrity-checked and put in its place, owned like the old one.
#   PostgreSQL: a safety dump of the current database is taken first (unless
#               --no-safety-backup), then pg_restore --clean replaces its contents in one
#               transaction (all or nothing).
#
#   systemctl stop fms-server
#   docker/scripts/restore.sh /var/backups/fms/fms-sqlite-20250101T000000Z.db.gz --yes
#   systemctl start fms-server
set -euo pipefail
# shellcheck source=db-common.sh source-path=SCRIPTDIR
. "$(dirname "$0")/db-common.sh"

usage() {
    cat <<'EOF2'
Usage: restore.sh BACKUP [--database-url URL | --data-dir DIR] [--server-url URL] [--yes]
                  [--no-safety-backup] [--skip-checksum]

Replaces the fms database with BACKUP (fms-sqlite-*.db.gz or fms-postgres-*.dump from
backup.sh). The server must be stopped.

  --database-url URL   postgres://… or sqlite:PATH (default: $DATABASE_URL)
  --data-dir DIR       SQLite: the data directory holding fms.db (default: $FMS_DATA_DIR or
                       /var/lib/fms), used when no database URL is given
  --server-url URL     refuse while a server answers here (default: http://127.0.0.1:8088;
                       "" skips this check)
  --yes                do not ask for confirmation
  --no-safety-backup   PostgreSQL: do not dump the current database first
  --skip-checksum      restore even without BACKUP.sha256 next to the backup
  -h, --help           this text
EOF2
}

URL="${DATABASE_URL:-}"
DATA_DIR="${FMS_DATA_DIR:-/var/lib/fms}"
SERVER_URL="http://127.0.0.1:8088"
YES=0
SAFETY=1
CHECKSUM=1
BACKUP=""
while [ $# -gt 0 ]; do
    case "$1" in
        --database-url) URL="${2?--database-url needs a value}"; shift 2 ;;
        --data-dir) DATA_DIR="${2:?--data-dir needs a value}"; URL=""; shift 2 ;;
        --server-url) SERVER_URL="${2?--server-url needs a value}"; shift 2 ;;
        --yes) YES=1; shift ;;
        --no-safety-backup) SAFETY=0; shift ;;
        --skip-checksum) CHECKSUM=0; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) usage >&2; die "unknown argument: $1" ;;
        *) [ -z "$BACKUP" ] || die "more than one backup given"; BACKUP="$1"; shift ;;
    esac
done
[ -n "$BACKUP" ] || { usage >&2; exit 1; }
[ -f "$BACKUP" ] || die "no such file: $BACKUP"
resolve_db "$URL" "$DATA_DIR"

case "$(basename "$BACKUP")" in
    *.db.gz) KIND=sqlite ;;
    *.dump) KIND=postgres ;;
    *) die "$BACKUP is neither a .db.gz (SQLite) nor a .dump (PostgreSQL) backup" ;;
esac
[ "$KIND" = "$DB_KIND" ] || die "$BACKUP is a $KIND backup but the target database is $DB_KIND"

if [ "$CHECKSUM" -eq 1 ]; then
    [ -f "$BACKUP.sha256" ] || die "$BACKUP.sha256 is missing (--skip-checksum to restore anyway)"
    (cd "$(dirname "$BACKUP")" && sha256sum --quiet -c "$(basename "$BACKUP").sha256") \
        || die "$BACKUP does not match its checksum: corrupted or tampered with"
fi

# The server must not be running: it would keep writing to (and caching) the old database.
if [ -n "$SERVER_URL" ] && command -v curl >/dev/null \
    && curl -fsS -m 3 -o /dev/null "${SERVER_URL%/}/healthz" 2>/dev/null; then
    die "fms_server answers at $SERVER_URL: stop it first (systemctl stop fms-server), or pass --server-url for the right address"
fi

if [ "$DB_KIND" = sqlite ]; then
    TARGET_DESC="$DB_TARGET"
else
    TARGET_DESC="$(mask_url "$DB_TARGET")"
fi
if [ "$YES" -ne 1 ]; then
    [ -t 0 ] || die "not a terminal: pass --yes to confirm"
    printf 'Replace the database %s with %s? Type "restore" to go on: ' "$TARGET_DESC" "$BACKUP" >&2
    read -r answer
    [ "$answer" = restore ] || die "not confirmed; nothing changed"
fi

umask 077
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"

if [ "$DB_KIND" = sqlite ]; then
    need sqlite3 "apt install sqlite3"
    need gzip
    dir="$(dirname "$DB_TARGET")"
    [ -d "$dir" ] || die "no directory $dir"
    if command -v fuser >/dev/null && fuser -s "$DB_TARGET" 2>/dev/null; then
        die "a process still has $DB_TARGET open (fuser -v $DB_TARGET): stop it first"
    fi
    TMP="$dir/.fms-restore-$STAMP.db"
    trap 'rm -f "$TMP"' EXIT
    gzip -dc "$BACKUP" >"$TMP"
    result="$(sqlite3 -bail "$TMP" "PRAGMA integrity_check;")"
    [ "$result" = ok ] || die "the backup fails its integrity check: $result"
    sqlite3 -bail "$TMP" "SELECT count(*) FROM tasks;" >/dev/null || die "the backup has no tasks table"
    if [ -e "$DB_TARGET" ]; then
        chown --reference="$DB_TARGET" "$TMP" 2>/dev/null || true
        chmod --reference="$DB_TARGET" "$TMP" 2>/dev/null || true
        for suffix in "" -wal -shm; do
            [ -e "$DB_TARGET$suffix" ] && mv "$DB_TARGET$suffix" "$DB_TARGET.before-restore-$STAMP$suffix"
        done
        note "kept the previous database as $DB_TARGET.before-restore-$STAMP"
    else
        chown --reference="$dir" "$TMP" 2>/dev/null || true
    fi
    mv "$TMP" "$DB_TARGET"
    trap - EXIT
else
    need pg_restore "apt install postgresql-client"
    need pg_dump "apt install postgresql-client"
    pg_restore --list "$BACKUP" >/dev/null || die "$BACKUP is not a readable pg_dump archive"
    if [ "$SAFETY" -eq 1 ]; then
        safety="$(dirname "$BACKUP")/fms-postgres-before-restore-$STAMP.dump"
        pg_dump --format=custom --no-owner --no-privileges --file="$safety" "$DB_TARGET" \
            || die "could not dump the current database first (--no-safety-backup to skip)"
        write_checksum "$safety"
        note "dumped the current database to $safety"
    fi
    # --clean --if-exists drops what the dump recreates; --single-transaction makes a failed
    # restore leave the database as it was.
    pg_restore --clean --if-exists --no-owner --no-privileges --single-transaction \
        --exit-on-error --dbname="$DB_TARGET" "$BACKUP" \
        || die "pg_restore failed; the database is unchanged"
fi
note "restored $BACKUP into $TARGET_DESC; start the server again"
