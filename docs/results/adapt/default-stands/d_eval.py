"""The decision of plan.txt: rule D (the default, once kept, stands) against N (as shipped) on choice draws 100-103,
all three scenarios, RAVDESS and nEMO left out: D's cells from this folder's curve-*.json, N's from
../check-choice/check_eval.py's readers (draws 100-101 from ../guard-choice/, 102-103 from ../check-choice/).

    python docs/results/adapt/default-stands/d_eval.py
"""

import glob
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "check-choice"))
import check_eval  # noqa: E402


def main() -> None:
    n_cells = {**check_eval.old_cells(), **check_eval.new_cells()}
    rows = {}
    for path in glob.glob(str(HERE / "curve-*.json")):
        for cell in json.load(open(path))["cells"]:
            if cell["arm"] == "zero-shot":
                continue
            key = (check_eval.direction(path), cell["scenario"], cell["arm"], cell["k"], cell["draw"])
            none, _, _, zero_shot = n_cells[key]
            rows[key] = (none, cell["unweighted_accuracy"], zero_shot, cell["kept"])
    for key, (n, d, _, kept) in sorted(rows.items()):
        if abs(n - d) > 0.06:  # draws 100-101's telephone-babble cells of N carry one decimal
            print("  differs", key, f"N {n:.2f} D {d:.2f} ({kept})")
    print(f"{len(rows)} cells; N {statistics.mean(r[0] for r in rows.values()):.2f}, D {statistics.mean(r[1] for r in rows.values()):.2f}")
    for scenario in ("ordinary", "few-emotions", "telephone-babble"):
        part = [r for k, r in rows.items() if k[1] == scenario]
        print(f"  {scenario}: {len(part)} cells; N {statistics.mean(r[0] for r in part):.2f}, D {statistics.mean(r[1] for r in part):.2f}")
    groups = defaultdict(lambda: defaultdict(list))
    for (corpus, scenario, arm, k, _), r in rows.items():
        groups[(scenario, arm, k)][corpus].append(r)
    below = {"N": [], "D": []}
    for group, by_corpus in sorted(groups.items()):
        zs = statistics.mean(rs[0][2] for rs in by_corpus.values())
        for i, name in enumerate(("N", "D")):
            value = statistics.mean(statistics.mean(r[i] for r in rs) for rs in by_corpus.values())
            if value < zs - 1:
                below[name].append((group, round(value, 2), round(zs, 2)))
    print(f"  groups below zero-shot - 1: {below}")
    n_mean = statistics.mean(r[0] for r in rows.values())
    d_mean = statistics.mean(r[1] for r in rows.values())
    ships = len(rows) == 96 and not below["D"] and d_mean >= n_mean
    print(f"decision by plan.txt: {'D ships' if ships else 'D does not ship'}")


if __name__ == "__main__":
    main()
