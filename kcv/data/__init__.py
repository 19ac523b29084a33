"""Data sources, the Example schema, the input pipeline and embedded generators."""
