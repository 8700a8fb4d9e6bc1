"""mailcase's benchmark: a reproducible corpus, real servers, baselines in the same run."""
