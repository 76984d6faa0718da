"""Model card templates of ser-hf, shipped in the wheel as the package ``ser_hf.hub_cards`` (see setup.py)."""
