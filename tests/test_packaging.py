"""The package as users would install it: ``python -m build`` makes a wheel and an sdist whose metadata, extras and
entry point are right, ``twine check`` passes, and the wheel installed into a fresh virtual environment runs
``ser-hf --help`` and the demo (training, its model card from the templates the wheel ships, prediction).

Building takes about a minute, so these tests run under ``make package`` (which sets ``SER_HF_PACKAGE_TESTS=1`` and
``SER_HF_PACKAGE_DIST``, the folder it built into), not in ``make test``. The fresh environment installs the wheel
alone (``--no-deps``) and reads its dependencies from the project's ``.venv`` (a ``.pth`` line naming its
site-packages), which keeps it offline and quick; the editable install of the clone there is not active (a path line
does not run that folder's ``.pth`` hooks), and the commands run outside the clone, so ``ser_hf`` is the wheel's: the
tests check where it was imported from.
"""

from __future__ import annotations

import email
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.skipif(
    os.environ.get("SER_HF_PACKAGE_TESTS") != "1", reason="builds the package: run by `make package`"
)

EXTRAS = {"onnx", "timeline", "app", "docs", "dev", "experiments", "dereverberation"}


def run(args, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, f"{args}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """The folder ``make package`` built into (``SER_HF_PACKAGE_DIST``), or a fresh build."""
    if os.environ.get("SER_HF_PACKAGE_DIST"):
        return Path(os.environ["SER_HF_PACKAGE_DIST"]).resolve()
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--outdir", out, REPO])
    return out


def wheel_of(dist: Path) -> Path:
    (wheel,) = dist.glob("ser_hf-*.whl")
    return wheel


def test_wheel_and_sdist_pass_twine_check(dist):
    files = sorted(dist.iterdir())
    assert {path.suffix for path in files} == {".whl", ".gz"}, files
    run([sys.executable, "-m", "twine", "check", "--strict", *files])


def test_metadata_extras_and_entry_point(dist):
    import ser_hf

    with zipfile.ZipFile(wheel_of(dist)) as wheel:
        names = wheel.namelist()
        info = next(name for name in names if name.endswith(".dist-info/METADATA")).rsplit("/", 1)[0]
        metadata = email.message_from_string(wheel.read(f"{info}/METADATA").decode())
        entry_points = wheel.read(f"{info}/entry_points.txt").decode()
    assert metadata["Name"] == "ser-hf" and metadata["Version"] == ser_hf.__version__
    assert metadata["Requires-Python"] == ">=3.11" and metadata["License-Expression"] == "Apache-2.0"
    assert metadata["Description-Content-Type"] == "text/markdown" and "# ser-hf" in metadata.get_payload()
    assert set(metadata.get_all("Provides-Extra")) == EXTRAS
    requirements = metadata.get_all("Requires-Dist")
    assert any(r.startswith("torch==2.11") for r in requirements)
    assert any(r.startswith("onnxruntime") and 'extra == "onnx"' in r for r in requirements)
    assert any(r.startswith("gradio") and 'extra == "app"' in r for r in requirements)
    assert any(r.startswith("nara-wpe") and 'extra == "dereverberation"' in r for r in requirements)
    assert "[console_scripts]\nser-hf = ser_hf.cli:main" in entry_points
    # Every package of the source tree, the card templates as ser_hf.hub_cards, and nothing of the tests.
    packages = {str(path.parent.relative_to(REPO)) for path in (REPO / "ser_hf").rglob("__init__.py")}
    assert {name for name in packages if f"{name}/__init__.py" not in names} == set()
    assert "ser_hf/hub_cards/model_card_template.md" in names
    assert f"{info}/licenses/LICENSE" in names  # the licence's text, not only its name
    assert not [name for name in names if name.startswith(("tests/", "bench/", "recipes/", "data/", "pretrained/"))]
    assert not [name for name in names if name.endswith(".safetensors")]  # the embedded encoder stays out


def test_sdist_holds_the_sources_and_no_tests(dist):
    """``python -m build`` builds the wheel from the sdist, so the wheel's contents (above) show the sdist complete;
    MANIFEST.in adds the card templates and leaves out the tests, which need the repository around them."""
    (sdist,) = dist.glob("ser_hf-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"pyproject.toml", "setup.py", "README.md", "LICENSE", "hub_cards/model_card_template.md"} <= names
    assert "ser_hf/cli/__init__.py" in names and not [name for name in names if name.startswith("tests/")]


@pytest.fixture(scope="module")
def wheel_venv(dist, tmp_path_factory) -> Path:
    """A fresh virtual environment with the wheel installed, its dependencies read from the project's .venv."""
    venv = tmp_path_factory.mktemp("wheel_venv") / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    site_packages = Path(
        run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    )
    (site_packages / "project_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps", wheel_of(dist)])
    return venv


def test_the_wheel_installs_and_runs(wheel_venv, tmp_path):
    bin_dir = wheel_venv / "bin"
    where = run([bin_dir / "python", "-c", "import ser_hf; print(ser_hf.__file__)"], cwd=tmp_path).stdout
    assert Path(where.strip()).is_relative_to(wheel_venv), where  # the wheel's ser_hf, not the clone's
    assert "usage: ser-hf" in run([bin_dir / "ser-hf", "--help"], cwd=tmp_path).stdout


def test_the_demo_runs_from_the_wheel(wheel_venv, tmp_path):
    """make demo's steps with the installed wheel: train (the card renders from the wheel's templates), predict."""
    for name in ("data", "recipes"):
        (tmp_path / name).symlink_to(REPO / name)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    ser_hf = wheel_venv / "bin" / "ser-hf"
    run(
        [ser_hf, "train", "recipes/demo.yaml", "--output_dir", "outputs/demo", "--disable_tqdm", "true"],
        cwd=tmp_path,
        env=env,
    )
    card = (tmp_path / "outputs/demo/README.md").read_text()
    assert "## How to use" in card and "## Evaluation protocol" in card
    clip = "data/ravdess_sample/Actor_08/03-01-05-02-01-01-08.flac"
    prediction = run([ser_hf, "predict", "outputs/demo", clip], cwd=tmp_path, env=env).stdout
    assert '"label"' in prediction
