"""Serving: the SavedModel for TF Serving (`export`: `export_saved_model`, the signature
and its input checks)."""
