"""Small helpers shared across sfm (atomic output, provenance, progress)."""
