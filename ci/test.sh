#!/usr/bin/env bash
# The README's test command: installs the system packages the tests drive for real when they are
# missing (redis-server for the Redis sync lock, fuse3 for the power-cut filesystem, socat and
# sqlite3 for scenario steps, python3 and curl, prlimit for an open-file limit, promtool from `prometheus` for the alert rules,
# Debian's chromium and chromium-driver for the browser tests),
# then runs the whole workspace's tests. The tests never skip a part that is missing, so a machine
# with only the Rust toolchain passes this command and fails a bare `cargo test --workspace` where
# a tool is absent. `.ci/run` calls this same file.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in prlimit:util-linux redis-server:redis-server socat:socat sqlite3:sqlite3 fusermount3:fuse3 python3:python3 curl:curl promtool:prometheus chromium:chromium chromedriver:chromium-driver; do
    command -v "${pair%%:*}" >/dev/null 2>&1 || need+=("${pair#*:}")
done
if ((${#need[@]})); then
    echo "installing: ${need[*]}"
    sudo_cmd=()
    [ "$(id -u)" = 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# Last, so the closing line of the run is the test runner's own summary.
cargo test --workspace "$@"
