"""FLOPs section: parameters and GMACs per variant, split by component, beside published counts.

Counts come from `s2d.models.flops.measure` (FlopCounterMode on the dense reference path, per video,
for the model's dense input; GMACs = FLOPs / 2). S2DNet parts: synopsis, locator, context,
sampler, detail, and fusion (the context-fusion convs, included in detail). References:

- the paper's Table 3 (Something-Something V2, V100, batch 16): S2DNet 22 GFLOPs, 28.0M params,
  6.5 ms; TSM-R50 33 GFLOPs, 24.3M params, 8.4 ms. The paper's "GFLOPs" are multiply-accumulates
  and leave out the two fusion convs, so they compare with `gmacs_excl_fusion`;
- the official code's counts, measured on its released configs: s2dnet-tsm-sthv2 29,842,180
  params and 25.44 GMACs (22.64 without fusion); s2dnet-tsm-minik 30,779,324 params, 22.08 GMACs.

Counting needs no timing, so this section gives the same numbers on every machine. In tiny mode
the shrunken models are counted and no reference is attached.
"""
from __future__ import annotations

from typing import Any

from s2d.bench.context import Bench, short_reason
from s2d.bench.models import Variant, build_variant

SECTION = "flops"

VARIANTS = (
    Variant("s2dnet-tsm-sthv2", "s2dnet-tsm-sthv2"),
    Variant("s2dnet-tsm-sthv2-linear", "s2dnet-tsm-sthv2", {"sampler": {"temporal": "linear"}}),
    Variant("s2dnet-tsm-minik", "s2dnet-tsm-minik"),
    Variant("s2dnet-x3d-k400", "s2dnet-x3d-k400"),
    Variant("tsm-r50", "tsm-r50"),
    Variant("x3d-m", "x3d-m"),
)

#: Published numbers per variant: `official_*` from the official code, `paper_*` from Table 3.
REFERENCES: dict[str, dict[str, float]] = {
    "s2dnet-tsm-sthv2": {"official_params": 29_842_180, "official_gmacs": 25.44, "official_gmacs_excl_fusion": 22.64,
                         "paper_gflops": 22.0, "paper_params_m": 28.0, "paper_latency_ms_v100_b16": 6.5},
    "s2dnet-tsm-minik": {"official_params": 30_779_324, "official_gmacs": 22.08},
    "tsm-r50": {"paper_gflops": 33.0, "paper_params_m": 24.3, "paper_latency_ms_v100_b16": 8.4},
}

#: Component order in tables.
PARTS = ("synopsis", "locator", "context", "sampler", "detail", "fusion")


def run(bench: Bench) -> None:
    """Count every variant (CPU, batch 1) and add total and per-part rows."""
    from s2d.models.flops import measure

    tiny = bench.mode == "tiny"
    for variant in VARIANTS:
        bench.log(f"flops {variant.key}")
        try:
            model = build_variant(variant, tiny)
            c = measure(model)
        except Exception as err:
            bench.skip(f"flops/{variant.key}/*", SECTION, short_reason(err))
            continue
        cfg = model.config
        refs = {} if tiny else REFERENCES.get(variant.key, {})
        group = variant.key
        common: dict[str, Any] = {"model": variant.key, "input": f"{cfg.dense_frames}×{cfg.dense_size}² dense clip"}
        ref_params = {k: v for k, v in refs.items() if "params" in k}
        ref_gmacs = {k: v for k, v in refs.items() if "gmacs" in k or "gflops" in k or "latency" in k}
        bench.add(f"flops/{variant.key}/total/params", SECTION, group, "total params", "params", c.params, "params",
                  reference=ref_params or None, **common)
        bench.add(f"flops/{variant.key}/total/gmacs", SECTION, group, "total GMACs per video", "gmacs", c.gmacs,
                  "GMAC", reference={k: v for k, v in ref_gmacs.items() if "excl" not in k and "gflops" not in k}
                  or None, **common)
        if "fusion" in c.gmacs_by_part:
            excl = c.gmacs - c.gmacs_by_part["fusion"]
            bench.add(f"flops/{variant.key}/excl_fusion/gmacs", SECTION, group, "GMACs without the fusion convs",
                      "gmacs", excl, "GMAC", reference={k: v for k, v in ref_gmacs.items()
                                                       if "excl" in k or "gflops" in k} or None, **common)
        elif "paper_gflops" in refs:
            bench.rows[-1].setdefault("reference", {})["paper_gflops"] = refs["paper_gflops"]
        for part in PARTS:
            if part in c.params_by_part:
                bench.add(f"flops/{variant.key}/{part}/params", SECTION, group, f"{part} params", "params",
                          c.params_by_part[part], "params", part=part, **common)
            if part in c.gmacs_by_part:
                bench.add(f"flops/{variant.key}/{part}/gmacs", SECTION, group, f"{part} GMACs", "gmacs",
                          c.gmacs_by_part[part], "GMAC", part=part, **common)
        del model
