"""KFP components: one folder each, a thin `component.py` over the `unipic` library."""
