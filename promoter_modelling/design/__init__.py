"""Design of cell-type-specific promoters with trained models."""
