"""One calibration's timings fitted twice: with grouped convs that oneDNN runs in its narrowest
blocked layout fitted as a kind of their own (``conv_grouped_narrow``, as ``hda calibrate``
now does), and with them fitted as ``conv_grouped`` (as before).

Fitting the same timings both ways takes the machine's drift out (see ``ab_conv_paths.py``):
the two device models differ only in the kind each such benchmark is fitted as. Score both on
the same profile runs with ``hda correlate RUNS --device-model OUT/device-split.json`` and
``.../device-one.json``.

    python benchmarks/ab_narrow_grouped.py --out results/grouped-narrow/ab   # about 3 minutes

Run on a quiet machine; ``--grid tiny`` for a quick end-to-end check.
"""

from __future__ import annotations

from ab_fits import folded, probed, run

from hardnet_analysis.metrics.conv_paths import NARROW_GROUPED

if __name__ == "__main__":
    run(__doc__.split("\n\n")[0], {"split": probed, "one": folded(NARROW_GROUPED, "conv_grouped")})
