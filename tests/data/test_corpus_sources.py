"""The facts a missing corpus folder's message gives (read from each corpus module's source, before ``datasets``
loads) are the corpus modules' own."""

from __future__ import annotations

import importlib

import pytest

from ser_hf.data.constants import NAMED_CORPORA
from ser_hf.data.corpus_sources import corpus_source, missing_corpus_hint


@pytest.mark.parametrize("name", NAMED_CORPORA)
def test_every_named_corpus_source_is_its_spec(name):
    spec = importlib.import_module(f"ser_hf.data.corpora.{name}").SPEC
    assert corpus_source(name) == (spec.full_name, spec.homepage)
    assert spec.homepage.startswith(("https://", "http://"))


def test_the_hint_names_each_missing_corpus_in_the_recipes_order(tmp_path):
    (tmp_path / "tess").mkdir()
    assert corpus_source("CREMA-D") == corpus_source("cremad") and corpus_source("folder") is None
    values = {"corpus": ["cremad", "tess", "emodb"], "data_dir": ["no/cremad", str(tmp_path / "tess"), "no/emodb"]}
    hint = missing_corpus_hint(values)
    assert hint.startswith("CREMA-D and EmoDB are not shipped with ser-hf: download them from their official sources")
    assert hint.endswith("with --data_dir PATH PATH PATH.") and "TESS" not in hint
    assert missing_corpus_hint({"corpus": "tess", "data_dir": str(tmp_path / "tess")}) == ""
