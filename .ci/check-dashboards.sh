#!/usr/bin/env bash
# Type-checks dashboards/*.json against Grafana's published dashboard schema
# (@grafana/schema, from npm) with the TypeScript compiler. There is no Grafana server
# here; this catches a misspelt or misplaced key, a wrong type, a missing field.
set -euo pipefail
cd "$(dirname "$0")/.."
GRAFANA_SCHEMA_VERSION="${GRAFANA_SCHEMA_VERSION:-13.2.3}"
TYPESCRIPT_VERSION="${TYPESCRIPT_VERSION:-5.9.3}"
if ! command -v npm >/dev/null 2>&1; then
	echo "check-dashboards: npm is missing; skipping the schema check" >&2
	exit 0
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm init -y >/dev/null 2>&1 &&
	npm install --silent --no-audit --no-fund "@grafana/schema@$GRAFANA_SCHEMA_VERSION" "typescript@$TYPESCRIPT_VERSION" >/dev/null 2>&1)
cat > "$work/loosen.ts" <<'TS'
// JSON cannot name a TypeScript enum: accept each string enum's literal values instead.
export type Loosen<T> = T extends string
  ? `${T}`
  : T extends Array<infer U>
    ? Array<Loosen<U>>
    : T extends object
      ? { [K in keyof T]: Loosen<T[K]> }
      : T;
TS
files=()
for f in dashboards/*.json; do
	name="$(basename "$f" .json)"
	{
		echo "import type { Dashboard } from '@grafana/schema';"
		echo "import type { Loosen } from './loosen';"
		printf 'export const dashboard = '
		printf "%s" "$(cat "$f")"
		echo ' satisfies Loosen<Dashboard>;'
	} > "$work/$name.ts"
	files+=("$name.ts")
done
(cd "$work" && npx --no-install tsc --noEmit --strict --skipLibCheck --moduleResolution bundler --module esnext --target es2022 "${files[@]}")
echo "check-dashboards: ${#files[@]} dashboards match @grafana/schema $GRAFANA_SCHEMA_VERSION"
