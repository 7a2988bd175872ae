"""The benchmark's library: params, audio I/O, readers, rendering, corruption, models, scores."""
