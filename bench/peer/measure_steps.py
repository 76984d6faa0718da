"""bench/peer/measure.py with bench/step_timing.py's callback added to every `Trainer` of the process as well: the same
arms, arguments and report, plus each step's timings (and a profiled window of steps where asked) in the JSON file
that ``SER_HF_BENCH_STEP_TIMES`` names.

    SER_HF_BENCH_STEP_TIMES=STEPS.json python bench/peer/measure_steps.py REPORT.json serhf RECIPE.yaml [...]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # measure.py beside this file

import measure  # noqa: E402

from bench.step_timing import install_from_environment  # noqa: E402

if __name__ == "__main__":
    install_from_environment()
    measure.main(sys.argv[1:])
