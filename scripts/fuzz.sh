#!/usr/bin/env bash
# Runs every Fuzz target in the repository for a fixed time each
# (default 10s): `scripts/fuzz.sh 30s`. Seed corpora under testdata/fuzz
# always run as part of the ordinary tests; this explores beyond them.
set -euo pipefail
cd "$(dirname "$0")/.."
t=${1:-10s}
n=0
while IFS= read -r line; do
  file=${line%%:*}
  rest=${line#*:}; rest=${rest#*:}
  name=$(sed -E 's/^func (Fuzz[A-Za-z0-9_]+).*/\1/' <<<"$rest")
  dir=$(dirname "$file")
  mod=$dir
  while [[ ! -f $mod/go.mod ]]; do mod=$(dirname "$mod"); done
  rel=.${dir#"$mod"}
  echo "fuzz $dir $name"
  (cd "$mod" && go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" "$rel" >"/tmp/fuzz-$name.log" 2>&1) || {
    cat "/tmp/fuzz-$name.log"; echo "fuzz target $name failed"; exit 1; }
  n=$((n+1))
done < <(grep -rn --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' pkg services test | sort)
echo "$n fuzz targets ran for $t each"
