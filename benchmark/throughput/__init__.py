"""Inference throughput of a model: model-only sweep and end-to-end (README, "Throughput").

``python -m benchmark.throughput model=NAME [throughput.device=cuda ...]`` writes
``throughput.json`` (schema ``nsclc-io-bench/throughput/v1``) into its Hydra run folder.
One concept per module: :mod:`.settings` (the sweep config), :mod:`.modes` (precision, layout,
compile), :mod:`.targets` (network and input shape), :mod:`.timing`, :mod:`.memory`,
:mod:`.gate` (accuracy gate), :mod:`.flops`, :mod:`.peaks` (GPU peak FLOP/s), :mod:`.sweep`
(model-only rows, OOM retry), :mod:`.stream` (the deep data path), :mod:`.end_to_end`,
:mod:`.environment` (hardware/software key), :mod:`.record` (record, name, tables),
:mod:`.app` (one run).
"""
