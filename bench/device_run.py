"""What ran where, for a device-tool script (bench/gpu_figures.sh, bench/gpu_profile.sh): the date, the GPU, the
versions, the commit and a digest of each file named, as JSON, printed too.

    python -m bench.device_run RUN.json COMMIT DEVICE SCRIPT [FILE ...]
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as metadata
import json
import os
import subprocess
import sys
import time
from pathlib import Path

#: The packages whose versions a run records.
PACKAGES = ("torch", "transformers", "datasets", "accelerate", "peft", "torchcodec", "soundfile", "numpy")


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("path", help="the JSON file written")
    parser.add_argument("commit", help="the commit that runs (the device copy's own git names another)")
    parser.add_argument("device", choices=["cuda", "cpu"])
    parser.add_argument("script", help="the device script that runs")
    parser.add_argument("files", nargs="*", help="files whose digests are recorded (the code that runs)")
    args = parser.parse_args(argv)
    path, commit, device, script, files = args.path, args.commit, args.device, args.script, args.files
    import torch

    gpu = None
    if device == "cuda":
        query = ["nvidia-smi", "--query-gpu=name,memory.total,driver_version", "--format=csv,noheader"]
        gpu = subprocess.run(query, capture_output=True, text=True).stdout.strip()
    run = {
        "script": script,
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "commit": commit,
        "gpu": gpu,
        "cuda_available": torch.cuda.is_available(),
        "cpu_cores": os.cpu_count(),
        "python": sys.version.split()[0],
        "versions": {name: metadata.version(name) for name in PACKAGES},
    }
    if files:
        run["file_digests"] = {name: hashlib.sha256(Path(name).read_bytes()).hexdigest()[:12] for name in files}
    Path(path).write_text(json.dumps(run, indent=1))
    print(json.dumps(run))
    return run


if __name__ == "__main__":
    main()
