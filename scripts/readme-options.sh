#!/usr/bin/env bash
# Regenerates the option tables in README.md from the binaries' own
# declarations (-print-options), between the markers
# <!-- options:SERVICE:begin --> and <!-- options:SERVICE:end -->.
set -euo pipefail
cd "$(dirname "$0")/.."
make -s build >/dev/null
for svc in edge enricher; do
  table=$(bin/$svc -print-options)
  python3 - "$svc" "$table" <<'PY'
import sys, re
svc, table = sys.argv[1], sys.argv[2]
p = "README.md"
s = open(p).read()
begin, end = f"<!-- options:{svc}:begin -->", f"<!-- options:{svc}:end -->"
i, j = s.index(begin) + len(begin), s.index(end)
s = s[:i] + "\n" + table.strip() + "\n" + s[j:]
open(p, "w").write(s)
PY
done
echo "README.md option tables regenerated"
