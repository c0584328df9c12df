"""The problem kinds (single-label, multi-label, regression, multiple choice): what a label is, how it is
verbalised, predicted and scored, one module per kind."""
