#!/usr/bin/env bash
# Refreshes the vendored GraphiQL bundle served at /graphql/assets/ (a developer's task, never run
# by the build or CI: nothing downloads at build or run time). Needs npm and the npm registry.
#
#   bash assets/graphiql/update.sh [GRAPHIQL_VERSION] [REACT_VERSION]
set -euo pipefail
GRAPHIQL="${1:-3.8.3}"
REACT="${2:-18.3.1}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
npm pack --silent "graphiql@$GRAPHIQL" "react@$REACT" "react-dom@$REACT" >/dev/null
for pkg in "graphiql-$GRAPHIQL" "react-$REACT" "react-dom-$REACT"; do
    name="${pkg%-*}"
    mkdir "$name"
    tar xzf "$pkg.tgz" -C "$name"
    cp "$name/package/LICENSE" "$HERE/LICENSE.$name"
done
gzip -9 -n -c graphiql/package/graphiql.min.js >"$HERE/graphiql.min.js.gz"
gzip -9 -n -c graphiql/package/graphiql.min.css >"$HERE/graphiql.min.css.gz"
gzip -9 -n -c react/package/umd/react.production.min.js >"$HERE/react.production.min.js.gz"
gzip -9 -n -c react-dom/package/umd/react-dom.production.min.js >"$HERE/react-dom.production.min.js.gz"
printf 'graphiql %s\nreact %s\nreact-dom %s\n' "$GRAPHIQL" "$REACT" "$REACT" >"$HERE/VERSIONS"
echo "vendored: $(tr '\n' ' ' <"$HERE/VERSIONS")"
