"""Every link of a model card goes somewhere that serves it: the Hub, its documentation and the corpora's homepages.
ser-hf has no public repository or package index entry yet, so the card says how to install the version a model was
trained with from ser-hf's own distribution (the wheel `make package` builds, or `pip install -e .` in its source),
never an invented URL such as ``git+https://github.com/ser-hf/ser-hf``."""

from __future__ import annotations

import importlib
import re

from ser_hf import __version__
from ser_hf.data.constants import NAMED_CORPORA
from ser_hf.hub.card import create_model_card
from tests.conftest import REPO

TEMPLATE = REPO / "hub_cards" / "model_card_template.md"
#: Hosts (and paths) that serve what a card links: the Hub and its documentation, and the Hub's documentation
#: repository that the template's header cites. The corpora's homepages are added from their specs.
SERVED = ("https://huggingface.co/", "https://github.com/huggingface/hub-docs/")
URL = re.compile(r"(?:https?://|git\+)[^\s)\]`\"'<>]+")


def served_urls() -> tuple[str, ...]:
    homepages = [importlib.import_module(f"ser_hf.data.corpora.{name}").SPEC.homepage for name in NAMED_CORPORA]
    return (*SERVED, *homepages)


def unserved(text: str) -> list[str]:
    served = served_urls()
    return [url for url in URL.findall(text) if not url.startswith(served)]


def test_every_url_of_the_template_is_served():
    # A templated URL (https://huggingface.co/{{ base_model }}) is checked by what precedes its variable.
    assert unserved(TEMPLATE.read_text()) == []
    assert "github.com/ser-hf" not in TEMPLATE.read_text()


def test_every_url_of_the_example_cards_is_served():
    for card in (REPO / "hub_cards").rglob("*.md"):
        assert unserved(card.read_text()) == [], card


def test_the_check_catches_an_invented_url():
    assert unserved('pip install "ser-hf @ git+https://github.com/ser-hf/ser-hf"') == [
        "git+https://github.com/ser-hf/ser-hf"
    ]
    assert unserved("[RAVDESS](https://zenodo.org/record/1188976)") == []


def test_a_rendered_card_links_only_served_urls_and_installs_the_version_it_was_trained_with(cnn_run):
    text = create_model_card(cnn_run).text
    assert unserved(text) == []
    install = text.split("- **With ser-hf.**", 1)[1].split("\n- **", 1)[0]
    assert f"trained with ser-hf {__version__}" in install
    assert f"pip install ser_hf-{__version__}-py3-none-any.whl" in install and "make package" in install
    assert "pip install -e ." in install
    assert f"- **Library:** ser-hf {__version__} (the Python package `ser-hf`)" in text
