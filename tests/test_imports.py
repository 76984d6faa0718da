"""`import ser_hf` is cheap (its names are imported on first use), every public name still resolves, and importing
ser_hf.models registers the model types with the Auto classes."""

import importlib
import json
import subprocess
import sys

import pytest

import ser_hf
import ser_hf.deploy
import ser_hf.experiments
from tests.conftest import REPO

IMPORTED_AFTER = """
import json, sys
import ser_hf
before = sorted(name for name in ("torch", "transformers", "datasets", "sklearn") if name in sys.modules)
from ser_hf import build_baseline
from transformers import CONFIG_MAPPING
print(json.dumps({"before": before, "registered": "ser_crnn" in CONFIG_MAPPING}))
"""


@pytest.mark.parametrize("package", [ser_hf, ser_hf.deploy, ser_hf.experiments], ids=lambda package: package.__name__)
def test_every_public_name_resolves_to_the_object_of_its_module(package):
    assert sorted(package.__all__) == sorted(package._EXPORTS) and set(package.__all__) <= set(dir(package))
    for name, module in package._EXPORTS.items():
        assert getattr(package, name) is getattr(importlib.import_module(module, package.__name__), name)
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        package.no_such_name


# A fresh interpreter importing ser-hf and its models (11 s): in `make test-slow`, to keep `make test` under 5 minutes.
@pytest.mark.slow
def test_import_ser_hf_loads_no_heavy_library_and_its_models_register_on_first_use():
    result = subprocess.run([sys.executable, "-c", IMPORTED_AFTER], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1]) == {"before": [], "registered": True}


WRONG_AUDIO_PATH = """
import json, sys
from ser_hf.cli import main
status = main(["predict", "some/model", "no/such/recording.wav"])
heavy = sorted(name for name in ("torch", "transformers", "datasets") if name in sys.modules)
print(json.dumps({"status": status, "heavy": heavy}))
"""


def test_a_wrong_audio_path_is_answered_before_torch_transformers_or_datasets_load():
    result = subprocess.run([sys.executable, "-c", WRONG_AUDIO_PATH], capture_output=True, text=True, cwd=REPO)
    assert json.loads(result.stdout.splitlines()[-1]) == {"status": 2, "heavy": []}, result.stderr[-2000:]
    assert "no/such/recording.wav is neither an audio file nor a folder" in result.stderr
