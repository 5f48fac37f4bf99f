# shellcheck shell=bash
# Shared by backup.sh and restore.sh: which database the server uses, the way fms_server
# decides it (DATABASE_URL postgres://… or sqlite:PATH, else fms.db in FMS_DATA_DIR).

die() { echo "${0##*/}: $*" >&2; exit 1; }
note() { echo "${0##*/}: $*" >&2; }

# The URL with its password replaced by ***, for messages.
mask_url() { sed -E 's#(://[^:/@]*):[^@]*@#\1:***@#' <<<"$1"; }

# Sets DB_KIND (sqlite|postgres) and DB_TARGET (file path or URL) from $1 (a database URL,
# may be empty) and $2 (the data directory).
resolve_db() {
    local url="$1" data_dir="$2"
    case "$url" in
        postgres://*|postgresql://*)
            DB_KIND=postgres
            DB_TARGET="$url"
            ;;
        sqlite:*)
            DB_KIND=sqlite
            DB_TARGET="${url#sqlite:}"
            DB_TARGET="${DB_TARGET#//}"
            DB_TARGET="${DB_TARGET%%\?*}"
            ;;
        "")
            DB_KIND=sqlite
            DB_TARGET="${data_dir%/}/fms.db"
            ;;
        *)
            die "unsupported database URL: $(mask_url "$url") (postgres://… or sqlite:PATH)"
            ;;
    esac
    if [ "$DB_KIND" = sqlite ]; then
        case "$DB_TARGET" in
            *"'"*) die "SQLite path with a quote is not supported: $DB_TARGET" ;;
        esac
    fi
}

need() { command -v "$1" >/dev/null || die "$1 is not installed${2:+ ($2)}"; }

# sha256 of $1 written next to it as $1.sha256 (the format sha256sum -c reads).
write_checksum() { (cd "$(dirname "$1")" && sha256sum "$(basename "$1")" >"$(basename "$1").sha256"); }
