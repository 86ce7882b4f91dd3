"""Model families: each has its shapes and attention functions under `models/<name>/`."""
