"""Non-LM anchors that every language-model method is measured against: popularity and SASRec.

They rank the whole catalog from the same training sequences, break ties by the project's one
tie rule (`gti.rec.ties.tie_key` over catalog rows) and keep the top `eval.beams` items, so their
ranks, metrics, CIs and paired tests are the LM methods' (`gti.stages.anchor`).
"""

from gti.anchors.popularity import popularity_counts
from gti.anchors.ranking import top_rows
from gti.anchors.sasrec import SASRec, SasrecFit, sasrec_scores, train_sasrec

__all__ = ["SASRec", "SasrecFit", "popularity_counts", "sasrec_scores", "top_rows", "train_sasrec"]
