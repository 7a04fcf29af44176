"""Merge results stores computed elsewhere (a lent GPU's) into a store, never changing a stored row.

    python bench/merge_store.py SOURCE [SOURCE ...] [--into results/full.sqlite] [--json]
                                [--skip-different] [--replace-method METHOD ...] [--rtol R] [--dry-run]

Adds the keys the store lacks (with their per-question outcomes); a key already stored must have
equal metrics, and a stored row without outcomes gains the source's (how a rescoring attaches
outcomes to committed rows). A differing key refuses the merge of that source (nothing written,
exit 1) unless --skip-different, which merges the rest and lists the differences. A store that
fails PRAGMA integrity_check (before, or after the merge) exits 2. --replace-method METHOD is the one
deliberate change: the source's rows of METHOD (recomputed whole, from one code version) replace the
stored rows of their keys, outcomes included, and the report says how many had other metrics. See jdlib.merge.
"""
from __future__ import annotations

import argparse
import json
import sys

from jdlib.merge import MergeRefused, merge
from jdlib.results import StoreError


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="stores to merge, in order")
    p.add_argument("--into", default="results/full.sqlite", help="the store merged into (default: %(default)s)")
    p.add_argument("--json", action="store_true", help="print the reports as JSON (a list, one per source)")
    p.add_argument("--skip-different", action="store_true",
                   help="merge the new keys and outcomes even where other keys differ (those stay as stored)")
    p.add_argument("--replace-method", action="append", default=[], metavar="METHOD",
                   help="the source's rows of METHOD replace the stored ones (a method recomputed whole; repeatable)")
    p.add_argument("--rtol", type=float, default=0.0, help="relative tolerance of equal float metrics (default: exact)")
    p.add_argument("--dry-run", action="store_true", help="report only; write nothing")
    args = p.parse_args(argv)
    reports, code = [], 0
    for source in args.sources:
        try:
            report = merge(source, args.into, rtol=args.rtol, skip_different=args.skip_different,
                           dry_run=args.dry_run, replace_methods=args.replace_method)
        except MergeRefused as e:
            report, code = e.report, 1
            print(f"merge_store: {e}", file=sys.stderr)
        except StoreError as e:
            print(f"merge_store: {e}", file=sys.stderr)
            code = 2
            break
        reports.append(report)
        if not args.json:
            print("\n".join(report.lines()), flush=True)
        if code:
            break
    if args.json:
        print(json.dumps([r.to_json() for r in reports], indent=1))
    return code


if __name__ == "__main__":
    sys.exit(main())
