"""Tests for keras_se.quantization (a package, so module names do not clash
with those of other test folders)."""
