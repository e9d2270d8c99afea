"""The leaderboard: committed result records -> ranked tables, figures, ``leaderboard/README.md``.

``python -m benchmark.leaderboard`` rebuilds it, ``... submit RUN_DIR`` adds a run, ``... check``
fails when the committed README is not what the records give, ``... fresh`` runs the ranked
models on new data draws. One concept per module: :mod:`.store` (the results folder),
:mod:`.ranking` (pooled CIs and bootstrap ranks), :mod:`.table` (the README),
:mod:`.throughput_table`, :mod:`.figures`, :mod:`.build`, :mod:`.fresh` (the command),
:mod:`.fresh_aggregate` (its stored aggregates, the flag) and :mod:`.oracle` (the truth's
predictions, which the oracle's curves are drawn from).
"""

from benchmark.leaderboard.store import LeaderboardError

__all__ = ["LeaderboardError"]
