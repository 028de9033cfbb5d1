"""gti: Semantic-ID vocabulary for language models, initialized with Grounded Token Initialization."""

__version__ = "0.1.0"
