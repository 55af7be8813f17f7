#!/usr/bin/env bash
# Every allocator setting on both models at batch 1 and 16, interleaved so that load drifts hit each
# setting alike; one JSON line each into results.jsonl (the machine's load is in every line).
set -euo pipefail
cd "$(dirname "$0")"
TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=17179869184:glibc.malloc.top_pad=1073741824
for batch in ${BATCHES:-16 1}; do
  for model in ${MODELS:-s2dnet-tsm-sthv2 tsm-r50}; do
    S2D_MALLOC=default python probe.py default "$model" "$batch"
    python probe.py kept "$model" "$batch"
    GLIBC_TUNABLES=$TUNABLES python probe.py tunables "$model" "$batch"
  done
done | tee -a "${OUT:-results.jsonl}"
