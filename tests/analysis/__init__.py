"""Tests for keras_se.analysis (a package, so module names such as test_cli do not
clash with those of tests/export)."""
