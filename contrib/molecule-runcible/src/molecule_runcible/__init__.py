"""Molecule driver for the runcible.oci collection (see driver.py)."""
