"""DVC stages of the blind-data-cleaning benchmark: ``python -m stages.<name>``.

Each module here is a thin entry point; the reusable, tested logic lives in :mod:`stages.lib`.
"""
