"""Training library: labelled data sets, feature cache, training loop, metrics (CLIs: pipeline.train, pipeline.evaluate)."""
