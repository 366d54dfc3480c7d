"""The import campaign's table: one row a model and exporter, from the JSON lines the long campaign writes.

    CNNDSL_FULL=1 CNNDSL_CAMPAIGN_LOG=campaign.jsonl python -m pytest tests/test_import.py -k every_torchvision
    python benchmarks/import_campaign.py campaign.jsonl [more.jsonl ...] > table.md

A model run twice (pieces of the campaign run again, or its saved export imported again by a later cnndsl)
takes its fields from the last row that has them.
"""

from __future__ import annotations

import json
import sys


def table(paths: list[str]) -> str:
    rows: dict[tuple[str, str], dict] = {}
    for path in paths:
        with open(path) as f:
            for line in f:
                if line.strip():
                    r = json.loads(line)
                    rows.setdefault((r["model"], r["exporter"]), {}).update(r)
    out = ["| model | exporter | input | lines | max relative difference | parameters | export (s) | "
           "export + import + check (s) | result |", "|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for (model, exporter), r in sorted(rows.items()):
        size = r.get("size")
        err = r.get("max_rel")
        out.append("| " + " | ".join([
            model, exporter, f"{size}x{size}" if size else "", str(r.get("lines", "")),
            "" if err is None else (f"{err:.1e}" if err else "0"),
            f"{r['params']:,}" if "params" in r else "", str(r.get("export_s", "")), str(r.get("s", "")),
            "pass" if r.get("ok") else "FAIL: " + r.get("error", "").replace("|", "\\|")]) + " |")
    ok = sum(1 for r in rows.values() if r.get("ok"))
    out.append(f"\n{ok} of {len(rows)} runs pass.")
    return "\n".join(out)


if __name__ == "__main__":
    print(table(sys.argv[1:]))
