#!/usr/bin/env bash
# Builds the Jaeger v2 all-in-one binary (v1.76.0 = v2.13.0) into <repo>/bin/jaeger
# for the tracing component tests. Jaeger lives in this nested module so its
# dependency graph (older otel/pdata) never mixes with migtrace's go.mod.
# A first build takes minutes, so it runs only when the binary is missing.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$repo/bin/jaeger"

if [[ -x "$out" && "${1:-}" != "-f" ]]; then
	exit 0
fi

mkdir -p "$repo/bin"
cd "$here"
echo "building jaeger v1.76.0 into $out (takes a few minutes the first time)" >&2
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
go build -trimpath -o "$tmp" github.com/jaegertracing/jaeger/cmd/jaeger
mv "$tmp" "$out"
