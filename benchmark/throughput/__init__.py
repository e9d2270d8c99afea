"""Inference throughput of a model: model-only sweep and end-to-end (docs/throughput.md).

``python -m benchmark.throughput model=NAME [throughput.device=cuda ...]`` writes
``throughput.json`` (schema ``nsclc-io-bench/throughput/v1``) into its Hydra run folder. It
measures what a submission declares (``Submission.network``, ``Submission.caches``), nothing
found by attribute name. Modules: :mod:`.settings` (the ``throughput:`` config, checked),
:mod:`.measuring` (how a figure is taken: timing, memory, FLOPs, peak FLOP/s, environment),
:mod:`.gate` (accuracy gate), :mod:`.model_only` (the network, its modes, the sweep),
:mod:`.end_to_end` (cohort on disk -> predictions, the stream data path),
:mod:`.throughput_record` (record, file name, tables), :mod:`.app` (one measurement, written).
"""
