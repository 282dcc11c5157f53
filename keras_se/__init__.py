"""keras_se."""
