# Shared by the CLI tests: FBNET, a temporary directory removed at exit,
# check CONDITION MESSAGE (prints ok/FAIL, sets fail=1), py CODE (Debian's python).
FBNET=${FBNET:-build/fbnet}
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
check() { if eval "$1"; then echo "ok: $2"; else echo "FAIL: $2"; fail=1; fi; }
py() { /usr/bin/python3 -c "$@"; }
