"""The copy-me submission: a working example of the submission contract (not ranked)."""
