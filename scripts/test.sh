#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then
# runs the format check, clippy with -D warnings, and every workspace test
# (including the fuzz corpus replay and the interop tests against Python websockets).
set -euo pipefail
cd "$(dirname "$0")/.."

# --- what the tests need --------------------------------------------------------
if ! python3 -c 'import websockets, sys; sys.exit(0 if websockets.version.version.startswith("17.") else 1)' 2>/dev/null; then
    echo "installing Python websockets 17 (the reference peer for interop tests)"
    python3 -m pip install --quiet --disable-pip-version-check 'websockets>=17,<18'
fi
python3 -c 'import websockets; print("python websockets", websockets.version.version)'
rustup component add rustfmt clippy >/dev/null 2>&1 || true
# The fault lab (lab/) builds network namespaces with a silent nftables blackhole;
# its tests skip with a printed reason only where these truly cannot be had.
if ! command -v nft >/dev/null || ! command -v ip >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing nftables and iproute2 (the fault lab's network namespaces)"
        apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nftables iproute2 >/dev/null
    else
        echo "note: nft/ip missing and cannot be installed here: the lab's namespace tests will skip"
    fi
fi

# The EMFILE test runs `heartbeat serve` under `prlimit --nofile=64:64` (util-linux).
if ! command -v prlimit >/dev/null && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing util-linux (prlimit, for the out-of-descriptors test)"
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq util-linux >/dev/null
fi

# --- checks ---------------------------------------------------------------------
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
# The opt-in serde feature (core and the adapters), which no workspace member enables.
cargo clippy -p heartbeat-core -p heartbeat-tokio -p heartbeat-transport -p heartbeat-mio -p heartbeat-blocking --all-targets --features serde -- -D warnings
echo "== cargo doc -D warnings (every public item documented, no broken links)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
echo "== cargo test"
cargo test --workspace --no-fail-fast
echo "== cargo test --features serde (Config from TOML/JSON, serializable events and status)"
cargo test -p heartbeat-core -p heartbeat-tokio --features serde --no-fail-fast --test serde

# --- the Python package (bindings/python: outside the cargo workspace, own lockfile) -----
# Built into a throwaway venv as a wheel and installed from it, so the tests import what a
# user would install; its pytest suite runs real websockets 17 peers on loopback.
echo "== bindings/python: fmt, clippy, doc, wheel, mypy, pytest"
py_manifest=bindings/python/Cargo.toml
cargo fmt --manifest-path "$py_manifest" -- --check
cargo clippy --manifest-path "$py_manifest" --all-targets -- -D warnings
RUSTDOCFLAGS="-D warnings" cargo doc --manifest-path "$py_manifest" --no-deps --quiet
py_out="$(cargo metadata --manifest-path "$py_manifest" --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')"
py_venv="$py_out/python-venv"
[ -x "$py_venv/bin/python" ] || python3 -m venv "$py_venv"
"$py_venv/bin/pip" install --quiet --disable-pip-version-check 'maturin>=1.16,<2' pytest pytest-timeout hypothesis mypy 'websockets>=17,<18'
rm -rf "$py_out/wheels"
"$py_venv/bin/maturin" build --release --quiet --manifest-path "$py_manifest" --interpreter "$py_venv/bin/python" -o "$py_out/wheels"
"$py_venv/bin/pip" install --quiet --disable-pip-version-check --force-reinstall --no-deps "$py_out"/wheels/heartbeat-*.whl
(cd bindings/python/python && "$py_venv/bin/python" -m mypy --ignore-missing-imports heartbeat)
# The stub against the built extension: every name, signature and default as it is at runtime.
(cd bindings/python && "$py_venv/bin/python" -m mypy.stubtest heartbeat._core --allowlist stubtest-allowlist.txt)
(cd bindings/python && "$py_venv/bin/python" -m pytest -q -s tests)
# Feature combinations the workspace build does not cover (the CLI turns TLS on for
# heartbeat-tokio; nothing turns on heartbeat-blocking's rustls feature).
echo "== heartbeat-tokio without TLS (wss:// is an error at the call)"
cargo test -p heartbeat-tokio --test connect_errors
echo "== heartbeat-tokio keepalive for other stacks (axum, tokio-tungstenite 0.30)"
cargo clippy -p heartbeat-tokio --features axum,tokio-tungstenite-030 --all-targets -- -D warnings
cargo test -p heartbeat-tokio --features axum,tokio-tungstenite-030 --test axum --test compat_030
echo "== heartbeat-blocking over rustls (KeepAlive<_, StreamOwned>)"
cargo clippy -p heartbeat-blocking --features rustls --all-targets -- -D warnings
cargo test -p heartbeat-blocking --features rustls --test tls
