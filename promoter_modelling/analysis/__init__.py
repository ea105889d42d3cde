"""Analyses of trained models: in-silico motif insertion (insertion.py), the motifs a model
attends to (attended.py), zero-shot transfer to the fluorescence data (transfer.py), MEME motif
files and sampling (motifs.py) and their figures (plots.py)."""
