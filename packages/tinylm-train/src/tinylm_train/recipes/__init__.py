"""One recipe per training mode: its data, collate, loss and loop."""
