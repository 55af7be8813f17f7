"""`python -m s2d info`: the named models, their inputs, parameters and (optionally) GMACs."""
from __future__ import annotations

import argparse
import json


def add_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("pattern", nargs="?", default=None, help="shell-style name filter, e.g. 's2dnet-*'")
    parser.add_argument("--flops", action="store_true", help="also count GMACs per video (a forward per model)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def describe(name: str, flops: bool = False) -> dict:
    """One model's input spec, size and (optionally) complexity, from its config."""
    import s2d
    from s2d.models.flops import count_params, measure

    model = s2d.create(name)
    c = model.config
    row = {"name": name, "kind": c.kind, "classes": c.num_classes, "labels": c.labels,
           "dense_input": f"{c.dense_frames}x{c.dense_size}x{c.dense_size}"}
    if c.kind == "s2dnet":
        row["synopsis"] = f"{c.synopsis.arch} {c.synopsis.frames}x{c.synopsis.size}"
        row["detail"] = f"{c.detail.arch} {c.sampler.frames}x{c.sampler.size}"
    else:
        row["synopsis"] = "-"
        row["detail"] = f"{c.arch} {c.frames}x{c.size}"
    row["params"] = count_params(model)
    if flops:
        row["gmacs"] = round(measure(model).gmacs, 2)
    return row


def run(args: argparse.Namespace) -> int:
    import s2d

    rows = [describe(n, args.flops) for n in s2d.list_models(args.pattern)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    cols = ["name", "classes", "dense_input", "synopsis", "detail", "params"] + (["gmacs"] if args.flops else [])
    table = [[str(r[c]) if c != "params" else f"{r[c] / 1e6:.2f}M" for c in cols] for r in rows]
    widths = [max(len(c), *(len(t[i]) for t in table)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w) for c, w in zip(cols, widths)))
    for t in table:
        print("  ".join(v.ljust(w) for v, w in zip(t, widths)))
    return 0
