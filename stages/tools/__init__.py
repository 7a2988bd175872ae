"""Commands that are not DVC stages: ``python -m stages.tools.<name>`` (clean a dataset of your own,
apply a profile, gate on metrics, distribute the pipeline, the training-length study, song lists)."""
