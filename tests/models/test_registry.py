"""The one list of model kinds (ser_hf.models.runtime.registry) and what the other stages read from it."""

from __future__ import annotations


def test_every_model_kind_has_the_name_model_cards_give_it():
    """Cards name the architecture from the registry (one list): every baseline and encoder family, and ser-hf's
    pooling-head type of each family, has a name there."""
    from ser_hf.models.runtime.registry import BASELINES, ENCODER_FAMILIES, architecture_name

    for model_type, entry in {**BASELINES, **ENCODER_FAMILIES}.items():
        assert entry.description and architecture_name(model_type) == entry.description
    for family in ENCODER_FAMILIES.values():
        assert architecture_name(family.pooling_config_class.model_type) == family.description
    assert architecture_name("something_new") == "something_new"
