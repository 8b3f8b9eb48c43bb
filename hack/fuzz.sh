#!/usr/bin/env bash
# Runs every Go fuzz target of the repository for FUZZTIME each (default
# 30s). Used by `make fuzz`. Targets are found by grep, so ones added later
# run without editing this script; each runs from the Go module that holds
# it. Failing inputs land in the package's testdata/fuzz/<Target>/, where
# `go test` then runs them as seeds: keep them with the fix.
#
#   FUZZTIME=2m hack/fuzz.sh             every target for two minutes
#   hack/fuzz.sh FuzzLoad FuzzSubstitute  only the named targets
#   FUZZFLAGS='-parallel 1' hack/fuzz.sh  extra go test flags
#
# FUZZMINIMIZETIME (default 10s) bounds the shrinking of each new input:
# Go's default of 60s can spend a whole short run shrinking one input.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
FUZZTIME=${FUZZTIME:-30s}
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-10s}
GO=${GO:-go}
read -r -a extra <<<"${FUZZFLAGS:-}"

# file:name of every `func FuzzXxx(f *testing.F)`, skipping build output.
mapfile -t targets < <(grep -rEo --include='*_test.go' --exclude-dir=.git --exclude-dir=bin --exclude-dir=vendor \
  '^func Fuzz[A-Za-z0-9_]*\(' . | sed -E 's/\($//; s/:func /:/' | sort)
if ((${#targets[@]} == 0)); then
  echo "no fuzz targets found" >&2
  exit 1
fi

failed=()
ran=0
for t in "${targets[@]}"; do
  file=${t%%:*} name=${t##*:}
  if (($# > 0)) && [[ " $* " != *" $name "* ]]; then
    continue
  fi
  dir=$(dirname "$file")
  # The module that holds the package: its nearest go.mod upwards.
  mod=$dir
  while [[ ! -f $mod/go.mod && $mod != . ]]; do mod=$(dirname "$mod"); done
  pkg=./${dir#"$mod"/}
  [[ $dir == "$mod" ]] && pkg=.
  echo "== $name ($dir, $FUZZTIME)" >&2
  ran=$((ran + 1))
  if ! (cd "$root/$mod" && "$GO" test "$pkg" -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" "${extra[@]}"); then
    failed+=("$name ($dir)")
  fi
done
if ((ran == 0)); then
  echo "no fuzz target matches: $*" >&2
  exit 1
fi
if ((${#failed[@]} > 0)); then
  echo "fuzz targets that failed (their inputs are under testdata/fuzz/):" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "$ran fuzz targets ran for $FUZZTIME each" >&2
