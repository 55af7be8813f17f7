"""Page faults, time and memory of batch forwards under one allocator setting, in a fresh process.

    python bench/allocator/probe.py MODE MODEL BATCH        # MODE: default | kept | tunables

`kept` applies `s2d.inference.allocator.keep_freed_memory()`; `tunables` expects the caller to have
set `GLIBC_TUNABLES` (run.sh sets the issue's setting); `default` is glibc's behaviour
(`S2D_MALLOC=default`). The model is `s2d.create(MODEL)` (seed 0), optimised for inference, on a
fixed uint8 batch; one warm-up forward, then 3 timed. Prints one JSON line; `logits_sum` shows the
outputs are the same under every setting.
"""
import json
import os
import resource
import sys
import time

mode, name, batch = sys.argv[1], sys.argv[2], int(sys.argv[3])
if mode == "kept":
    from s2d.inference.allocator import keep_freed_memory

    assert keep_freed_memory(force=True)
import torch  # noqa: E402

import s2d  # noqa: E402

torch.manual_seed(0)
model = s2d.create(name).eval().optimize_for_inference()
c = model.config
x = torch.randint(0, 255, (batch, c.dense_frames, 3, c.dense_size, c.dense_size), dtype=torch.uint8,
                  generator=torch.Generator().manual_seed(0))
usage = lambda: resource.getrusage(resource.RUSAGE_SELF)  # noqa: E731
with torch.inference_mode():
    model(x)
    before, t0 = usage(), time.perf_counter()
    for _ in range(3):
        out = model(x)
    seconds = (time.perf_counter() - t0) / 3
    after = usage()
print(json.dumps({"mode": mode, "model": name, "batch": batch, "threads": torch.get_num_threads(),
                  "minor_faults_per_3": after.ru_minflt - before.ru_minflt,
                  "sys_s_per_3": round(after.ru_stime - before.ru_stime, 2),
                  "user_s_per_3": round(after.ru_utime - before.ru_utime, 2),
                  "ms_per_video": round(1000 * seconds / batch, 1), "peak_rss_mb": after.ru_maxrss // 1024,
                  "logits_sum": round(float(out.logits.sum()), 4), "loadavg": [round(v, 2) for v in os.getloadavg()]}))
