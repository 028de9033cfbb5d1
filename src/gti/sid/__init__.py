"""Semantic ids: item text -> sentence embedding -> residual codes -> unique token strings."""

from gti.sid.codec import LEVEL_LETTERS, decode, encode, sid_tokens, token
from gti.sid.encoder import encode_texts, resolve_precision
from gti.sid.quantize import disambiguate, reassign_collisions, rq_kmeans
from gti.sid.report import format_report, load_codebooks, save_codebooks, semantic_check, sid_report
from gti.sid.rqvae import RqVaeResult, rq_vae
from gti.sid.semantic_ids import SemanticIds, build_sids
from gti.sid.trie import SidTrie

__all__ = [
    "LEVEL_LETTERS",
    "RqVaeResult",
    "SemanticIds",
    "SidTrie",
    "build_sids",
    "decode",
    "disambiguate",
    "encode",
    "encode_texts",
    "format_report",
    "load_codebooks",
    "reassign_collisions",
    "resolve_precision",
    "rq_kmeans",
    "rq_vae",
    "save_codebooks",
    "semantic_check",
    "sid_report",
    "sid_tokens",
    "token",
]
