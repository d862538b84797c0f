#!/usr/bin/env bash
# Generates the Go, TypeScript and Java clients from proto/.
#
#   clients/generate.sh [go] [typescript] [java]     (default: all three)
#
# Go and TypeScript code is committed (clients/go/gen, clients/typescript/src/gen)
# and must come out byte-identical on every run: `make check-generated` fails
# CI otherwise. Java classes are generated at build time by Maven into
# clients/java/target (git-ignored); here Maven only runs that step once, so a
# proto that does not compile for Java fails this command too.
#
# Every generator is a local, pinned plugin driven by the protoc of the
# project's virtualenv (grpcio-tools, pinned in requirements.lock):
# protoc-gen-go and protoc-gen-go-grpc are installed with `go install` into
# the cache folder below, ts-proto comes from clients/typescript's lock file.
set -euo pipefail
export LC_ALL=C

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE_DIR="${FRAMEVAULT_CACHE_DIR:-$HOME/.cache/framevault}"
PYTHON="$ROOT/.venv/bin/python"

PROTOC_GEN_GO_VERSION="v1.36.12"       # google.golang.org/protobuf
PROTOC_GEN_GO_GRPC_VERSION="v1.6.2"    # google.golang.org/grpc/cmd/protoc-gen-go-grpc
GO_MODULE="github.com/framevault/framevault/clients/go"

cd "$ROOT"
mapfile -t FRAMEVAULT_PROTOS < <(find proto/framevault -name '*.proto' | sort)

protoc() {
  if [[ ! -x "$PYTHON" ]]; then
    echo "generate.sh: $PYTHON is missing; run 'make install' first" >&2
    exit 1
  fi
  "$PYTHON" -m grpc_tools.protoc -Iproto "$@"
}

generate_go() {
  local plugin_dir="$CACHE_DIR/protoc-plugins/go-$PROTOC_GEN_GO_VERSION-grpc-$PROTOC_GEN_GO_GRPC_VERSION"
  if [[ ! -x "$plugin_dir/protoc-gen-go" || ! -x "$plugin_dir/protoc-gen-go-grpc" ]]; then
    mkdir -p "$plugin_dir"
    GOBIN="$plugin_dir" GOFLAGS=-mod=mod go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO_VERSION"
    GOBIN="$plugin_dir" GOFLAGS=-mod=mod go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC_VERSION"
  fi
  rm -rf clients/go/gen
  # google/rpc/status.proto declares go_package genproto/googleapis/rpc/status,
  # so the generated code imports that module instead of a copy of it.
  protoc \
    --plugin=protoc-gen-go="$plugin_dir/protoc-gen-go" \
    --plugin=protoc-gen-go-grpc="$plugin_dir/protoc-gen-go-grpc" \
    --go_out=clients/go --go_opt=module="$GO_MODULE" \
    --go-grpc_out=clients/go --go-grpc_opt=module="$GO_MODULE" \
    "${FRAMEVAULT_PROTOS[@]}"
  echo "generated clients/go/gen"
}

install_typescript_tools() {
  local dir=clients/typescript
  # npm records the installed tree in node_modules/.package-lock.json; older
  # than the lock file means the lock changed since the last install.
  if [[ ! -f "$dir/node_modules/.package-lock.json" || "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]]; then
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

generate_typescript() {
  install_typescript_tools
  local out=clients/typescript/src/gen
  rm -rf "$out" && mkdir -p "$out"
  # The google/rpc and google/protobuf files are listed too, so that their
  # TypeScript types land next to the framevault ones (decoding error details
  # needs error_details.proto).
  protoc \
    --plugin=protoc-gen-ts_proto="$ROOT/clients/typescript/node_modules/.bin/protoc-gen-ts_proto" \
    --ts_proto_out="$out" \
    --ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,env=node \
    "${FRAMEVAULT_PROTOS[@]}" \
    google/rpc/status.proto google/rpc/error_details.proto
  echo "generated $out"
}

generate_java() {
  local output
  # Quiet Maven still prints terminal escapes; show its output only on failure.
  if ! output="$(mvn -q -B -f clients/java/pom.xml generate-sources 2>&1)"; then
    echo "$output" >&2
    exit 1
  fi
  echo "generated clients/java/target/generated-sources/protobuf"
}

languages=("$@")
if [[ ${#languages[@]} -eq 0 ]]; then
  languages=(go typescript java)
fi
for language in "${languages[@]}"; do
  case "$language" in
    go) generate_go ;;
    typescript) generate_typescript ;;
    java) generate_java ;;
    *) echo "generate.sh: unknown language '$language' (go, typescript, java)" >&2; exit 2 ;;
  esac
done
