#!/usr/bin/env bash
# Builds and runs the main example (examples/quickstart.cpp): installs what is missing first.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
"$root/scripts/install-deps.sh"
cmake -S "$root" -B "$root/build/example" -DCMAKE_BUILD_TYPE=Release -DCASCADE_BUILD_TESTS=OFF -DCASCADE_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$root/build/example" -j"${JOBS:-2}" --target example_quickstart
exec "$root/build/example/examples/example_quickstart"
