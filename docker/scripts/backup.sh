#!/usr/bin/env bash
# Online backup of fms_server's database, while the server runs.
#   SQLite:     sqlite3's online backup API (.backup), integrity-checked, gzip-compressed.
#   PostgreSQL: pg_dump in custom format (compressed, restorable with pg_restore), verified.
# Each backup gets a .sha256 file beside it, which restore.sh checks.
#
#   docker/scripts/backup.sh -o /var/backups/fms                     # SQLite in /var/lib/fms
#   DATABASE_URL=postgres://fms@db/fms docker/scripts/backup.sh -o /var/backups/fms --keep-days 14
set -euo pipefail
# shellcheck source=db-common.sh source-path=SCRIPTDIR
. "$(dirname "$0")/db-common.sh"

usage() {
    cat <<'EOF2'
Usage: backup.sh [--database-url URL | --data-dir DIR] [-o OUT_DIR] [--keep-days N]

Backs up the fms database without stopping the server.

  --database-url URL  postgres://user[:pass]@host[:port]/db or sqlite:PATH
                      (default: $DATABASE_URL)
  --data-dir DIR      SQLite: the server's data directory holding fms.db, used when no
                      database URL is given (default: $FMS_DATA_DIR or /var/lib/fms)
  -o, --output DIR    where backups go (default: ./backups); created mode 0700
  --keep-days N       afterwards, delete this database kind's backups in OUT_DIR older
                      than N days (default: keep everything)
  -h, --help          this text

Writes OUT_DIR/fms-sqlite-<UTC time>.db.gz or OUT_DIR/fms-postgres-<UTC time>.dump, plus a
.sha256 file, and prints the backup's path. Restore with restore.sh.
EOF2
}

URL="${DATABASE_URL:-}"
DATA_DIR="${FMS_DATA_DIR:-/var/lib/fms}"
OUT=./backups
KEEP_DAYS=""
while [ $# -gt 0 ]; do
    case "$1" in
        --database-url) URL="${2?--database-url needs a value}"; shift 2 ;;
        --data-dir) DATA_DIR="${2:?--data-dir needs a value}"; URL=""; shift 2 ;;
        -o|--output) OUT="${2:?--output needs a value}"; shift 2 ;;
        --keep-days) KEEP_DAYS="${2:?--keep-days needs a value}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) usage >&2; die "unknown argument: $1" ;;
    esac
done
case "$KEEP_DAYS" in ''|[0-9]|[0-9][0-9]|[0-9][0-9][0-9]) ;; *) die "--keep-days needs a number of days" ;; esac
resolve_db "$URL" "$DATA_DIR"

umask 077
mkdir -p "$OUT"
[ -w "$OUT" ] || die "cannot write to $OUT"
STAMP="$(date -u +%Y%m%dT%H%M%SZ)"
TMP=""
cleanup() { if [ -n "$TMP" ]; then rm -f "$TMP" "$TMP.gz"; fi; }
trap cleanup EXIT

if [ "$DB_KIND" = sqlite ]; then
    need sqlite3 "apt install sqlite3"
    need gzip
    [ -f "$DB_TARGET" ] || die "no SQLite database at $DB_TARGET (is --data-dir right?)"
    FINAL="$OUT/fms-sqlite-$STAMP.db.gz"
    [ -e "$FINAL" ] && die "$FINAL already exists"
    TMP="$OUT/.fms-sqlite-$STAMP.partial"
    # The online backup API copies a consistent snapshot while the server keeps writing
    # (WAL mode); .timeout waits out the server's write locks instead of failing.
    sqlite3 -bail "$DB_TARGET" ".timeout 20000" ".backup '$TMP'"
    # Run as root while the server was stopped, sqlite3 may have left -wal/-shm files behind
    # owned by root, which the server's user could not open: give them the database's owner.
    for f in "$DB_TARGET-wal" "$DB_TARGET-shm"; do
        if [ -e "$f" ]; then chown --reference="$DB_TARGET" "$f" 2>/dev/null || true; fi
    done
    result="$(sqlite3 -bail "$TMP" "PRAGMA integrity_check;")"
    [ "$result" = ok ] || die "the copy fails its integrity check: $result"
    sqlite3 -bail "$TMP" "SELECT count(*) FROM tasks;" >/dev/null \
        || die "$DB_TARGET has no tasks table: not an fms database?"
    gzip -9 "$TMP"
    mv "$TMP.gz" "$FINAL"
    pattern='fms-sqlite-*.db.gz'
else
    need pg_dump "apt install postgresql-client"
    need pg_restore "apt install postgresql-client"
    FINAL="$OUT/fms-postgres-$STAMP.dump"
    [ -e "$FINAL" ] && die "$FINAL already exists"
    TMP="$OUT/.fms-postgres-$STAMP.partial"
    # One consistent snapshot (pg_dump runs in a single repeatable-read transaction). No
    # owners or grants: the restore target's user owns what it restores.
    pg_dump --format=custom --no-owner --no-privileges --file="$TMP" "$DB_TARGET" \
        || die "pg_dump of $(mask_url "$DB_TARGET") failed"
    pg_restore --list "$TMP" | grep -q 'TABLE .*tasks' \
        || die "the dump has no tasks table: not an fms database?"
    mv "$TMP" "$FINAL"
    pattern='fms-postgres-*.dump'
fi
TMP=""
write_checksum "$FINAL"
if [ "$DB_KIND" = sqlite ]; then source_desc="$DB_TARGET"; else source_desc="$(mask_url "$DB_TARGET")"; fi
note "backed up $source_desc ($(du -h "$FINAL" | cut -f1))"

if [ -n "$KEEP_DAYS" ]; then
    find "$OUT" -maxdepth 1 -type f -name "$pattern" -mtime +"$KEEP_DAYS" -print0 \
        | while IFS= read -r -d '' old; do
            rm -f -- "$old" "$old.sha256"
            note "deleted old backup $old"
        done
fi
echo "$FINAL"
