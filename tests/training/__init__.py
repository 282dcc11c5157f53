"""Tests for keras_se.training (a package: its test_cli does not clash with
tests/export's and tests/analysis')."""
