"""Data: the description of a labelled dataset (`DatasetArguments`), its loading, label schema and normalised rows
(`LabelledData`), label values and multiple-choice options."""
