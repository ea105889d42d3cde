"""Why a model predicts what it does: per-base attributions (DeepLIFT/SHAP, in-silico saturation
mutagenesis), motif discovery on them (TF-MoDISco), and the effects of genomic variants on
promoter activity."""
