"""The pipeline's stages, each a plain function of its settings and typed input artifacts.

`data` -> `sids` -> `init` -> [`ground`] -> `finetune` -> `evaluate` (an anchor's: `fit` ->
`evaluate`, `gti.stages.anchor`). Each `run_*` function
computes its stage into the folder it is given, or finds it there already computed for the
same settings and inputs (`gti.artifacts.run_stage`), and returns its artifact. The order,
the folders and the methods are the runner's (`gti.runner`).
"""

from gti.stages.anchor import run_anchor_eval, run_fit
from gti.stages.artifacts import DataArtifact, EvalArtifact, Shared, SidsArtifact, Weights
from gti.stages.data import data_key, run_data
from gti.stages.evaluate import run_eval
from gti.stages.finetune import run_finetune
from gti.stages.ground import run_ground
from gti.stages.init import run_init
from gti.stages.sids import run_sids

__all__ = [
    "DataArtifact", "EvalArtifact", "Shared", "SidsArtifact", "Weights",
    "data_key", "run_anchor_eval", "run_data", "run_eval", "run_finetune", "run_fit", "run_ground", "run_init",
    "run_sids",
]
