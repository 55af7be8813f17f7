#!/usr/bin/env bash
# Throughput and peak memory of `python -m s2d predict --window` on a generated 10-minute 720p video
# (30 fps, H.264), at low priority: video-seconds per wall-second and peak RSS, with the machine's load.
# VIDEO=path reuses a video; MINUTES, WINDOW, HOP, MODEL and BATCH change the run; OUT keeps the files.
set -euo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$(mktemp -d)}
MINUTES=${MINUTES:-10}
VIDEO=${VIDEO:-$OUT/long-720p.mp4}
MODEL=${MODEL:-s2dnet-x3d-synth}
[ -f "$VIDEO" ] || nice python bench/windows/make_video.py "$VIDEO" "$MINUTES"
rm -f "$OUT/windows.jsonl"
echo "load before: $(uptime)"
start=$(date +%s.%N)
/usr/bin/time -v nice python -m s2d predict "$VIDEO" --model "$MODEL" --window "${WINDOW:-2.0}" --hop "${HOP:-1.0}" \
  ${BATCH:+--batch-size "$BATCH"} --output "$OUT/windows.jsonl" --segments "$OUT/segments.json" 2> "$OUT/time.txt"
end=$(date +%s.%N)
echo "load after:  $(uptime)"
seconds=$(python -c "import av; c = av.open('$VIDEO'); s = c.streams.video[0]; print(float(s.duration * s.time_base))")
windows=$(wc -l < "$OUT/windows.jsonl")
rss=$(awk '/Maximum resident/ {print $6}' "$OUT/time.txt")
python - "$seconds" "$windows" "$rss" "$start" "$end" <<'PY'
import sys
video, windows, rss, start, end = float(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), *map(float, sys.argv[4:])
wall = end - start
print(f"{video:.0f} s of video, {windows} windows in {wall:.1f} s: {video / wall:.2f} video-s/s, "
      f"{windows / wall:.2f} windows/s, peak RSS {rss / 1024:.0f} MiB")
PY
