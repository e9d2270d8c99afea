"""Site boards: a site holding private cohorts runs every model on them and publishes aggregates.

``python -m benchmark.site evaluate`` runs the board's models through the fixed protocol on the
site's data (:mod:`.evaluate`); ``export`` turns those runs into one aggregate-only site record
(:mod:`.aggregate`); ``register`` files that record under ``leaderboard/datasets/``, where the
leaderboard shows it as a board of its own (``benchmark.leaderboard.datasets``). docs/sites.md.
"""
