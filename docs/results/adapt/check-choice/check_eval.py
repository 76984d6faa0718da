"""The decision of plan.txt: the three refusal rules (N none, S shipped, P paired bound) on the choice draws 102-103
(this folder's curve-*.json, run with the check disabled) pooled with draws 100-101 (../guard-choice/).

    python docs/results/adapt/check-choice/check_eval.py
"""

import glob
import json
import re
import statistics
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
OLD = HERE.parent / "guard-choice"


def direction(path: str) -> str:
    return Path(path).stem.split("-")[-1]


def zero_shot(cells: list) -> dict:
    return {c["scenario"]: c["unweighted_accuracy"] for c in cells if c["arm"] == "zero-shot"}


def new_cells() -> dict:
    """Draws 102-103: (direction, scenario, arm, k, draw) -> (N, S, P, zero-shot)."""
    rows = {}
    for path in glob.glob(str(HERE / "curve-*.json")):
        cells = json.load(open(path))["cells"]
        zs = zero_shot(cells)
        for c in cells:
            if c["arm"] == "zero-shot":
                continue
            unchanged = c["kept"].startswith("unchanged") and "statistics" not in c["kept"]
            below = c["estimate_ua"] is not None and c["estimate_before_ua"] is not None
            fire = not unchanged and below and c["estimate_ua"] < c["estimate_before_ua"]
            gain = c.get("nested_gain") or {}
            fire_paired = fire and gain.get("high") is not None and gain["high"] < 0
            ua, z = c["unweighted_accuracy"], zs[c["scenario"]]
            key = (direction(path), c["scenario"], c["arm"], c["k"], c["draw"])
            rows[key] = (ua, z if fire else ua, z if fire_paired else ua, z)
    return rows


def old_cells() -> dict:
    """Draws 100-101, as ../guard-choice/paired-bound/g2_eval.py reads them."""
    base, zs_of = {}, {}
    for path in glob.glob(str(OLD / "curve-*.json")):
        cells = json.load(open(path))["cells"]
        zs = zero_shot(cells)
        for scenario, value in zs.items():
            zs_of[(direction(path), scenario)] = value
        for c in cells:
            if c["arm"] == "zero-shot":
                continue
            unchanged = c["kept"].startswith("unchanged") and "statistics" not in c["kept"]
            fire = (
                not unchanged
                and c["estimate_ua"] is not None
                and c["estimate_before_ua"] is not None
                and c["estimate_ua"] < c["estimate_before_ua"]
            )
            key = (direction(path), c["scenario"], c["arm"], c["k"], c["draw"])
            base[key] = (c["unweighted_accuracy"], zs[c["scenario"]] if fire else c["unweighted_accuracy"])
    for line in open(OLD / "guard-telephone-babble.txt"):
        m = re.match(r"telephone-babble (\S+) (\w+)\s+k(\d+)\s+d(\d+) shipped\s+([\d.]+) guard\s+([\d.]+)", line)
        if m:
            base[(m[1].split("-")[-1], "telephone-babble", m[2], int(m[3]), int(m[4]))] = (float(m[5]), float(m[6]))
    rows = {}
    for path in glob.glob(str(OLD / "paired-bound" / "curve-*.json")):
        cells = json.load(open(path))["cells"]
        for scenario, value in zero_shot(cells).items():
            zs_of.setdefault((direction(path), scenario), value)
        for c in cells:
            if c["arm"] == "zero-shot":
                continue
            key = (direction(path), c["scenario"], c["arm"], c["k"], c["draw"])
            none, shipped = base[key]
            rows[key] = (none, shipped, c["unweighted_accuracy"], zs_of[(key[0], key[1])])
    return rows


def report(rows: dict, title: str) -> dict:
    names = ("N", "S", "P")
    means = {name: statistics.mean(r[i] for r in rows.values()) for i, name in enumerate(names)}
    print(f"{title}: {len(rows)} cells; " + ", ".join(f"{n} {means[n]:.2f}" for n in names))
    for scenario in ("ordinary", "few-emotions", "telephone-babble"):
        part = [r for k, r in rows.items() if k[1] == scenario]
        if not part:
            continue
        print(f"  {scenario}: {len(part)} cells; " + ", ".join(f"{n} {statistics.mean(r[i] for r in part):.2f}" for i, n in enumerate(names)))
    # The target's form: per (scenario, arm, k), the mean over corpora of the draws' mean against zero-shot - 1.
    groups = defaultdict(lambda: defaultdict(list))
    for (corpus, scenario, arm, k, _), r in rows.items():
        groups[(scenario, arm, k)][corpus].append(r)
    out = {name: [] for name in names}
    for group, by_corpus in sorted(groups.items()):
        zs = statistics.mean(rs[0][3] for rs in by_corpus.values())
        for i, name in enumerate(names):
            value = statistics.mean(statistics.mean(r[i] for r in rs) for rs in by_corpus.values())
            if value < zs - 1:
                out[name].append((group, round(value, 2), round(zs, 2)))
    for name in names:
        print(f"  {name}: groups below zero-shot - 1: {out[name] or 'none'}")
    refused = {name: sum(r[i] != r[0] for r in rows.values()) for i, name in enumerate(names)}
    print(f"  cells whose UA differs from N: {refused}")
    return {"means": means, "below": out}


if __name__ == "__main__":
    new, old = new_cells(), old_cells()
    for key, r in sorted(new.items()):
        if len(set(r[:3])) > 1:
            print("  differs", key, r[:3])
    if new:
        report(new, "draws 102-103 (reported beside, not used)")
    report(old, "draws 100-101")
    pooled = report({**old, **new}, "pooled (the decision)")
    left = [n for n in ("N", "S", "P") if not pooled["below"][n]] or ["N", "S", "P"]
    best = max(left, key=lambda n: pooled["means"][n])
    chosen = best if best != "S" and pooled["means"][best] > pooled["means"]["S"] + 0.1 else ("S" if "S" in left else best)
    print(f"rules left after 1: {left}; decision: {chosen}")
