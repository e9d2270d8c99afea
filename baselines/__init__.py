"""The harness's own models (``conf/model/*.yaml``).

``NETWORK_MODELS``: the baselines that train a network (their ``network()`` returns a
``Network``), declared here as a submission declares it in its card (``network: true``);
tests/models/test_models.py holds this list against the classes.
"""

NETWORK_MODELS = ("cnn3d", "timm25d_convnext_atto", "timm25d_efficientnet_b0", "timm25d_resnet18")
