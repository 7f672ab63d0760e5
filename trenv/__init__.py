"""trenv: a Jupyter-centred trusted research environment for confidential justice data."""

__version__ = "0.1.0"
