"""Small helpers every layer may use: atomic writes, thread counts, devices, process pools."""
