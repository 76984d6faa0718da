"""plan.txt's decision between D and B: B's five cells (bonferroni/, where N's and D's kept differ) in place of D's,
D's cells elsewhere, over choice draws 100-103.

    python docs/results/adapt/default-stands/b_eval.py
"""

import glob
import json
import statistics
from pathlib import Path

HERE = Path(__file__).resolve().parent


def cells(pattern: str) -> dict:
    out = {}
    for path in glob.glob(str(HERE / pattern)):
        corpus = Path(path).stem.split("-")[-1]
        for cell in json.load(open(path))["cells"]:
            if cell["arm"] != "zero-shot":
                out[(corpus, cell["scenario"], cell["arm"], cell["k"], cell["draw"])] = cell
    return out


if __name__ == "__main__":
    d_cells, b_cells = cells("curve-*.json"), cells("bonferroni/*curve-*.json")
    b = {key: (b_cells.get(key) or cell)["unweighted_accuracy"] for key, cell in d_cells.items()}
    for key, cell in sorted(b_cells.items()):
        print("  B", key, f"{cell['unweighted_accuracy']:.2f} ({cell['kept']}); D {d_cells[key]['unweighted_accuracy']:.2f}")
    d_mean = statistics.mean(cell["unweighted_accuracy"] for cell in d_cells.values())
    b_mean = statistics.mean(b.values())
    print(f"{len(b)} cells; D {d_mean:.2f}, B {b_mean:.2f}")
    print(f"decision by plan.txt: {'B' if len(b) == 96 and b_mean >= d_mean - 0.1 else 'D'}")
