"""DVC stages of the blind-data-cleaning benchmark: ``python -m stages.<name>``.

Each module here is a thin entry point; the reusable, tested logic lives in :mod:`stages.lib`;
commands that are not DVC stages (clean a dataset of yours, profiles, the metrics gate, the
distributed runner, studies) live in :mod:`stages.tools`.
"""
