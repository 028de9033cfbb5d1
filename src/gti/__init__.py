"""gti: Semantic-ID vocabulary for language models, initialized with Grounded Token Initialization.

The library surface is the same as the CLI's stages:

    from gti import load_dataset, build_sids, extend_vocabulary, initialize, ground, finetune, evaluate, diagnose

and a trained model's recommendations: `gti.Recommender.from_run(run_dir)` or `.from_pretrained(export_dir)`.

Names are imported on first use, so `import gti` stays fast.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load_dataset": "gti.data",
    "leave_one_out": "gti.data",
    "build_sids": "gti.sid",
    "SemanticIds": "gti.sid",
    "load_backbone": "gti.lm.backbone",
    "extend_vocabulary": "gti.lm.vocab",
    "initialize": "gti.lm.vocab",
    "ground": "gti.train.grounding",
    "ground_pairs": "gti.train.grounding",
    "finetune": "gti.train.finetune",
    "evaluate": "gti.rec",
    "diagnose": "gti.analysis",
    "load_config": "gti.config",
    "Recommender": "gti.recommend",
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'gti' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
