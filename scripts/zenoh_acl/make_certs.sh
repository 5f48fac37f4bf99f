#!/usr/bin/env bash
# Makes the certificates of an fms Zenoh deployment with openssl (EC P-256 keys, PKCS#8 PEM):
#
#   DIR/ca.pem, DIR/ca-key.pem          the fleet CA (made only if DIR/ca.pem does not exist;
#                                       keep ca-key.pem off the robots and the router)
#   DIR/router.pem, DIR/router-key.pem  the router's server certificate (made only with
#                                       --router), CN fms-router, SANs from --san
#   DIR/<name>.pem, DIR/<name>-key.pem  one client certificate per NAME, CN = NAME: a robot id,
#                                       fms-server or fms-phone
#
#   scripts/zenoh_acl/make_certs.sh DIR [--router] [--san SANS] [--days N] [NAME...]
#
# SANS is an openssl subjectAltName list, default "DNS:localhost,IP:127.0.0.1"; use the names
# and addresses the robots connect to (e.g. "DNS:fms.example.lan,IP:10.0.0.5").
# Adding a robot later: run again with the same DIR and the new robot id only.
# See config/zenoh/README.md.
set -euo pipefail

usage() { sed -n '2,17p' "$0" >&2; exit 2; }
[ $# -ge 1 ] || usage
DIR="$1"; shift
ROUTER=0
SAN="DNS:localhost,IP:127.0.0.1"
DAYS=365
NAMES=()
while [ $# -gt 0 ]; do
    case "$1" in
        --router) ROUTER=1 ;;
        --san) SAN="$2"; shift ;;
        --days) DAYS="$2"; shift ;;
        -h|--help) usage ;;
        -*) echo "make_certs: unknown option $1" >&2; exit 2 ;;
        *) NAMES+=("$1") ;;
    esac
    shift
done

mkdir -p "$DIR"
umask 077
newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

if [ ! -f "$DIR/ca.pem" ]; then
    newkey "$DIR/ca-key.pem"
    openssl req -x509 -new -key "$DIR/ca-key.pem" -sha256 -days $((DAYS * 5)) \
        -subj "/O=fms/CN=fms fleet CA" \
        -addext "basicConstraints=critical,CA:TRUE,pathlen:0" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" \
        -out "$DIR/ca.pem"
fi

# sign NAME EXTFILE: NAME-key.pem + NAME.pem signed by the CA with the given extensions.
sign() {
    local name="$1" ext="$2" cn="$3"
    newkey "$DIR/$name-key.pem"
    openssl req -new -key "$DIR/$name-key.pem" -subj "/O=fms/CN=$cn" -out "$DIR/$name.csr"
    openssl x509 -req -in "$DIR/$name.csr" -CA "$DIR/ca.pem" -CAkey "$DIR/ca-key.pem" \
        -CAcreateserial -sha256 -days "$DAYS" -extfile "$ext" -out "$DIR/$name.pem" 2>/dev/null
    rm -f "$DIR/$name.csr"
}

EXT="$(mktemp)"
trap 'rm -f "$EXT"' EXIT
if [ "$ROUTER" = 1 ]; then
    cat >"$EXT" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
subjectAltName=$SAN
EOF
    sign router "$EXT" fms-router
fi
for name in "${NAMES[@]}"; do
    case "$name" in
        */*|*'*'*|*'$'*|*'?'*|*'#'*|*' '*|@*|ca|router)
            echo "make_certs: $name cannot be a robot id / client name" >&2; exit 2 ;;
    esac
    cat >"$EXT" <<EOF
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth
EOF
    sign "$name" "$EXT" "$name"
done
chmod 644 "$DIR"/*.pem 2>/dev/null || true
chmod 600 "$DIR"/*-key.pem
