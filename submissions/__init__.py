"""Contributed models, one folder each (see submissions/README.md); ``_template`` is the copy-me."""
