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

# --- checks ---------------------------------------------------------------------
echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo doc -D warnings (every public item documented, no broken links)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --quiet
echo "== cargo test"
cargo test --workspace --no-fail-fast
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
