"""Package layout that pyproject.toml cannot express: the model card templates live in ``hub_cards/`` at the
repository root (where the Hub issue puts them) and ship in the wheel as the package ``ser_hf.hub_cards``, so that
``ser_hf.hub.card.model_card_template_path()`` finds them through ``importlib.resources`` in an editable install and in
an installed wheel alike. Everything else is configured in pyproject.toml."""

from pathlib import Path

from setuptools import find_packages, setup

#: Every ser_hf package, plus the card templates mapped from hub_cards/.
PACKAGES = find_packages(where=str(Path(__file__).resolve().parent), include=["ser_hf", "ser_hf.*"]) + [
    "ser_hf.hub_cards"
]
PACKAGE_DIR = {"ser_hf.hub_cards": "hub_cards"}
#: The card templates, and the recipe's generated schema (read before torch loads: ser_hf/recipe/schema.py).
PACKAGE_DATA = {"ser_hf.hub_cards": ["*.md", "*.jinja"], "ser_hf.recipe": ["schema.json"]}

if __name__ == "__main__":
    setup(packages=PACKAGES, package_dir=PACKAGE_DIR, package_data=PACKAGE_DATA)
