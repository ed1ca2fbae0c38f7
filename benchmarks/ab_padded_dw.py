"""One calibration's timings fitted twice: with depthwise convs whose channels oneDNN's blocked
layout pads fitted as a kind of their own (``conv_dw_padded``, as ``hda calibrate`` now does),
and with every depthwise conv fitted as ``conv_dw`` (as before).

Fitting the same timings both ways takes the machine's drift out (see ``ab_conv_paths.py``):
the two device models differ only in the kind each depthwise benchmark is fitted as. Score both
on the same profile runs with ``hda correlate RUNS --device-model OUT/device-split.json`` and
``.../device-one.json``.

    python benchmarks/ab_padded_dw.py --out results/dw-padded/ab   # about 3 minutes

Run on a quiet machine; ``--grid tiny`` for a quick end-to-end check.
"""

from __future__ import annotations

from ab_fits import folded, probed, run

from hardnet_analysis.metrics.conv_paths import PADDED_DEPTHWISE

if __name__ == "__main__":
    run(__doc__.split("\n\n")[0], {"split": probed, "one": folded(PADDED_DEPTHWISE, "conv_dw")})
