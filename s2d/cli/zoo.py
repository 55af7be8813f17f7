"""`python -m s2d zoo {list,cards,publish}`: the model zoo from the command line.

    list                       every model: kind, published repo@revision, local / cached weights
    cards [--check] [NAME...]  regenerate zoo/<name>/{config.json,README.md} and zoo/README.md from
                               the configs and measured figures (--check: exit 1 if any is stale)
    publish NAME --repo-id ORG/NAME [--weights PATH] [--dry-run] [--record] [--private]
                               upload config, card and weights; print the index entry to record
"""
from __future__ import annotations

import argparse
import json
import sys


def add_parser(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="zoo_command", metavar="ACTION")
    p = sub.add_parser("list", help="models with published / local / cached weights")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p = sub.add_parser("cards", help="regenerate the zoo folder's configs and model cards")
    p.add_argument("names", nargs="*", help="limit to these models (default: all)")
    p.add_argument("--check", action="store_true", help="only compare; exit 1 when a file is stale")
    p = sub.add_parser("publish", help="upload a model folder to the Hugging Face Hub")
    p.add_argument("name", help="registered model name")
    p.add_argument("--repo-id", required=True, help="Hub repo, ORG/NAME (created if missing)")
    p.add_argument("--weights", help="weights to publish: .safetensors, a torch checkpoint (read weights-only) or "
                                     "a model folder (default: zoo/<name>/model.safetensors)")
    p.add_argument("--dry-run", action="store_true", help="check and stage everything, upload nothing")
    p.add_argument("--record", action="store_true", help="write the new entry into the zoo index")
    p.add_argument("--private", action="store_true", help="create the repo private")
    p.add_argument("--token", help="Hub token (default: the one of `hf auth login`)")


def _list(args) -> int:
    from s2d.hub.factory import zoo_status

    rows = zoo_status()
    if args.json:
        print(json.dumps([{"name": r.name, "kind": r.kind, "published": r.published.to_dict() if r.published else None,
                           "local": r.local, "cached": r.cached} for r in rows], indent=2))
        return 0
    width = max(len(r.name) for r in rows)
    print(f"{'model':<{width}}  {'kind':<8}  weights")
    for r in rows:
        print(f"{r.name:<{width}}  {r.kind:<8}  {weights_status(r)}")
    if any(r.published is None and not r.local for r in rows):
        print("\nno weights yet: s2d.load(NAME) refuses these; s2d.create(NAME) builds the untrained architecture "
              "and `python -m s2d predict` runs it untrained, with a warning")
    return 0


def weights_status(r) -> str:
    """One `zoo list` row's weights column: where the weights are, or that there are none."""
    if r.published is not None and r.published.bundled:
        return "bundled in zoo/ (sha256-checked)" if r.local else "bundled, missing from zoo/ (use a source checkout)"
    if r.published is not None:
        where = f"{r.published.repo_id}@{r.published.revision[:10]}"
        extra = [s for s, on in (("in zoo/", r.local), ("cached", r.cached)) if on]
        return where + (f" ({', '.join(extra)})" if extra else " (not downloaded)")
    if r.local:
        return "unpublished, local weights in zoo/"
    return "no weights yet"


def _cards(args) -> int:
    from s2d.hub.registry import MODELS
    from s2d.hub.zoo_folder import sync_cards

    unknown = [n for n in args.names if n not in MODELS]
    if unknown:
        print(f"s2d zoo cards: unknown models {unknown}", file=sys.stderr)
        return 2
    stale = sync_cards(args.names or None, check=args.check)
    if args.check:
        if stale:
            print("stale zoo files (run `python -m s2d zoo cards`):", file=sys.stderr)
            for path in stale:
                print(f"  {path}", file=sys.stderr)
            return 1
        print("zoo cards are up to date")
        return 0
    for path in stale:
        print(f"wrote {path}")
    if not stale:
        print("zoo cards are up to date")
    return 0


def _publish(args) -> int:
    from s2d.hub._index import index_path
    from s2d.hub.errors import ZooError
    from s2d.hub.publish import publish

    try:
        result = publish(args.name, args.repo_id, weights=args.weights, dry_run=args.dry_run,
                         private=args.private or None, token=args.token, record=args.record)
    except ZooError as err:
        print(f"s2d zoo publish: {err}", file=sys.stderr)
        return 1
    print(f"{'would upload' if args.dry_run else 'uploaded'} {', '.join(result.files)} to {result.repo_id}")
    print(f"model.safetensors: {result.size:,} bytes, sha256 {result.sha256}")
    print(f"config.json: sha256 {result.config_sha256}")
    if args.dry_run:
        print("dry run: nothing was uploaded; the index entry gets the commit hash of the real upload")
        return 0
    print(f"revision (commit): {result.revision}")
    entry = json.dumps({args.name: result.entry().to_dict()}, indent=2)
    if args.record:
        print(f"recorded in {index_path()}:\n{entry}")
    else:
        print(f"record it in {index_path()} (or rerun with --record):\n{entry}")
    print("then regenerate the cards: python -m s2d zoo cards")
    return 0


def run(args) -> int:
    if args.zoo_command == "list":
        return _list(args)
    if args.zoo_command == "cards":
        return _cards(args)
    if args.zoo_command == "publish":
        return _publish(args)
    print("usage: python -m s2d zoo {list,cards,publish} ...", file=sys.stderr)
    return 2
