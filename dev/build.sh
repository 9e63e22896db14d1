#!/usr/bin/env bash
# Developer rebuild: editable install of provmark, incremental, serialized so parallel callers don't collide.
set -euo pipefail
cd "$(dirname "$0")/.."
exec flock /tmp/provmark-build.lock python3 -m pip install --no-build-isolation --no-deps -q -e . "$@"
