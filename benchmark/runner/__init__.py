"""One run of a model (data, protocol, scores, record), its job folder, sweeps of them."""
