"""Hydra search-path plugin: every ``submissions/*/conf`` folder joins nsclc-io-bench's config path.

So ``submissions/NAME/conf/model/NAME.yaml`` makes ``python -m benchmark model=NAME`` work without
an edit to the harness. Hydra finds this module by scanning the ``hydra_plugins`` namespace
package; it imports only the config rules from the project (``benchmark/runner/config_rules.py``): a
submission's config that breaks one stops the composition with file, key and rule named.
"""
