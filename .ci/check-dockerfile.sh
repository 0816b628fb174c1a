#!/usr/bin/env bash
# Lints the Dockerfile (see check-dockerfile.mjs), then runs its build command outside
# Docker and checks that the result is a static binary.
set -euo pipefail
cd "$(dirname "$0")/.."
DOCKERFILE_UTILS_VERSION="${DOCKERFILE_UTILS_VERSION:-0.16.3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm init -y >/dev/null 2>&1 && npm install --silent --no-audit --no-fund "dockerfile-utils@$DOCKERFILE_UTILS_VERSION" >/dev/null 2>&1)
cp .ci/check-dockerfile.mjs "$work/"
cmd="$(node "$work/check-dockerfile.mjs" "$PWD/Dockerfile")"
echo "check-dockerfile: lint and shape OK; building outside Docker: $cmd"
out="$work/bin"
mkdir -p "$out"
eval "${cmd//\/out\//$out/}"
if ldd_out="$(ldd "$out/certview_exporter" 2>&1)"; then
	echo "check-dockerfile: the binary is dynamic:"
	echo "$ldd_out"
	exit 1
fi
echo "$ldd_out" | grep -q "not a dynamic executable" || { echo "check-dockerfile: ldd said: $ldd_out"; exit 1; }
"$out/certview_exporter" --version 2>&1 | head -1
echo "check-dockerfile: ldd says the binary is not a dynamic executable"
