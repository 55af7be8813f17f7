#!/usr/bin/env bash
# The deploy section's figures: CPU inference paths (eager, optimize_for_inference, ONNX Runtime, bf16,
# int8 PT2E), accuracy per precision and the allocator settings of S2DNet-efficient and TSM-R50, in one run.
# Run it on a quiet machine: every figure is a latency or a ratio of latencies of this run.
# Extra arguments go to the bench, e.g. `--compile-model` (adds the whole-model compile; minutes more).
set -euo pipefail
cd "$(dirname "$0")/../.."
uptime
python -m s2d.bench --only deploy --json bench/deploy/cpu.json --markdown bench/deploy/cpu.md "$@"
uptime
