"""`import ser_hf` is cheap (its names are imported on first use), every public name still resolves, and
`ser_hf.register_auto_classes` registers the model types with the Auto classes: called by ser-hf's loaders, and by
`import ser_hf` once a user's import has loaded transformers' Auto classes."""

import importlib
import json
import subprocess
import sys

import pytest

import ser_hf
import ser_hf.deploy
import ser_hf.experiments
from tests.conftest import REPO

# The user's own import of transformers' Auto classes (no ser-hf name used) is what registers ser-hf's model types,
# also where a package that registering itself imports (peft) loaded them while half-imported.
IMPORTED_AFTER = """
import json, sys
import ser_hf
before = sorted(name for name in ("torch", "transformers", "datasets", "sklearn") if name in sys.modules)
hooked = [type(finder).__name__ for finder in sys.meta_path if type(finder).__module__ == "ser_hf"]
{user_import}
from transformers import CONFIG_MAPPING, AutoConfig
print(json.dumps({
    "before": before,
    "hooked": hooked,
    "registered": "ser_crnn" in CONFIG_MAPPING and type(AutoConfig.for_model("ser_crnn")).__module__,
    "hook_left": [type(finder).__name__ for finder in sys.meta_path if type(finder).__module__ == "ser_hf"],
}))
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
@pytest.mark.parametrize("user_import", ["from transformers import pipeline", "import peft"])
def test_import_ser_hf_loads_no_heavy_library_and_registers_once_the_user_imports_the_auto_classes(user_import):
    code = IMPORTED_AFTER.replace("{user_import}", user_import)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.splitlines()[-1]) == {
        "before": [],
        "hooked": ["_RegisterAfterAutoClasses"],
        "registered": "ser_hf.models.configuration_crnn",
        "hook_left": [],
    }


def test_register_auto_classes_is_public_idempotent_and_registers_every_ser_hf_type():
    """`ser_hf.register_auto_classes` is the registry's one function; calling it again changes nothing, and every
    (config, model, feature extractor) of ser-hf is then what the Auto classes give for its model type."""
    from transformers import CONFIG_MAPPING, FEATURE_EXTRACTOR_MAPPING, MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING

    from ser_hf.models.runtime import registry

    assert ser_hf.register_auto_classes is registry.register_auto_classes
    ser_hf.register_auto_classes()
    model_types = list(CONFIG_MAPPING.keys())
    ser_hf.register_auto_classes()
    assert list(CONFIG_MAPPING.keys()) == model_types
    for config_class, model_class, feature_extractor_class in registry.ser_model_types():
        assert CONFIG_MAPPING[config_class.model_type] is config_class
        assert MODEL_FOR_AUDIO_CLASSIFICATION_MAPPING[config_class] is model_class
        assert FEATURE_EXTRACTOR_MAPPING[config_class] is feature_extractor_class


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
