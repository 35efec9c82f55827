#!/usr/bin/env bash
# --help and the docs agree on every numeric default: each "(default V)" that a
# command's --help prints is compared with the value of the same option in the
# "| option | default |" table of the command's page in docs/.
set -u
. "$(dirname "$0")/common.sh"
compare() { # "command words" doc
  # shellcheck disable=SC2086
  "$FBNET" $1 --help > "$tmp/help" 2>&1 || { echo "FAIL: fbnet $1 --help"; fail=1; return; }
  local out
  out=$(py '
import re, sys
help_text, doc, cmd = open(sys.argv[1]).read(), open(sys.argv[2]).read(), sys.argv[3]
def num(v):
    try: return float(v)
    except ValueError: return None
helped = {}
for line in help_text.splitlines():
    m = re.match(r"\s+(--[a-z0-9-]+)\b.*?\(default:? ([^;,) ]+)", line)
    if m and num(m.group(2)) is not None: helped[m.group(1)] = num(m.group(2))
documented, rows = {}, 0
for line in doc.splitlines():
    cells = [c.strip() for c in line.strip().strip("|").split("|")]
    if len(cells) < 2 or "`--" not in cells[0]: continue
    names = re.findall(r"`(--[a-z0-9-]+)", cells[0])
    values = [v.strip() for v in cells[1].split(",")]
    if len(values) != len(names): values = [cells[1]] * len(names)
    for n, v in zip(names, values):
        if num(v) is not None: documented[n] = num(v)
    rows += 1
both = sorted(set(helped) & set(documented))
bad = ["%s: --help %g, %s %g" % (n, helped[n], sys.argv[2], documented[n]) for n in both
       if abs(helped[n] - documented[n]) > 1e-9 * max(1, abs(helped[n]))]
print("%d %d %s" % (len(both), rows, "; ".join(bad)))
' "$tmp/help" "$2" "$1")
  local n=${out%% *} rest=${out#* }
  local rows=${rest%% *} bad=${rest#* }
  [ "$bad" = "$rest" ] && bad=""
  check "[ $n -ge 3 ] && [ -z \"$bad\" ]" "fbnet $1 --help and $2 agree on $n numeric defaults ($rows rows) $bad"
}
compare "search" docs/search.md
compare "data scenes" docs/demo-data.md
compare "label" docs/proxy-data.md
exit $fail
