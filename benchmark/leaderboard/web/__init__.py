"""The leaderboard as a static web site: ``python -m benchmark.leaderboard site OUT``.

Built from the same board as ``leaderboard/README.md`` (records, ranking, figures' numbers).
One concept per module: :mod:`.verification` (how a row was checked), :mod:`.rows` (the index's
tables), :mod:`.plot` (a plotly figure and its tables), :mod:`.model_plots` and :mod:`.matrix`
(the figures), :mod:`.pages`, :mod:`.model_page` and :mod:`.site_page` (what each page shows),
:mod:`.render` (Jinja2, escaped), :mod:`.build` (files, assets, the output folder). Templates
and assets are package data.
"""
