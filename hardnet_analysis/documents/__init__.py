"""hda's on-disk documents, the package's lowest floor: what one command writes for another.

The profile run (`profile_run`), the device model (`device_model`), the latency model
(`latency_model`), the search front, sample and trained front (`fronts`), and the records they
share about a machine (`machine`). Each is a frozen dataclass deriving from `base.Document`:
one header (format, version), one writer and one reader with the same names for all
(``to_dict``/``write``, ``from_dict``/``read``), encoded and decoded field by field by
`records`. The modules here hold data and its reading only: they import the standard library
and the leaf modules `hardnet_analysis.errors`, `fileio`, `units` and `search_metrics`, never
the floors that compute, measure or search (``tests/test_layering.py`` checks it).
"""
