#!/usr/bin/env bash
# Makes (once) the Python venv with eclipse-zenoh that the tests use as an independent Zenoh
# implementation: the replica tests' router (fms_server/tests/support/zenoh_router.py), the
# migration tests' legacy robot (fms_server/tests/support/legacy_robot.py) and the Zenoh ACL
# test's client. Prints the venv's python.
#   scripts/zenoh_venv.sh            -> target/zenoh-venv/bin/python
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${FMS_ZENOH_VENV:-$ROOT/target/zenoh-venv}"
REQ="$ROOT/scripts/zenoh_acl/requirements.txt"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV" >&2
fi
if ! "$VENV/bin/python" - "$REQ" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version
want = [l.split("==") for l in open(sys.argv[1]) if "==" in l and not l.startswith("#")]
sys.exit(0 if all(version(n.strip()) == v.strip() for n, v in want) else 1)
PY
then
    "$VENV/bin/pip" install --quiet --disable-pip-version-check --only-binary :all: -r "$REQ" >&2
fi
echo "$VENV/bin/python"
