"""Training loops: each drives a model over the shared loop parts (data, collate, metrics, checkpoint)."""
