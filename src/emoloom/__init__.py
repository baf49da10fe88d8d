"""emoloom: screen small language models for joint emotion classification and VAD prediction.

Implements the system of *EmoLoom-2B* (arXiv 2601.01112). Run ``emoloom --help`` for the CLI.
"""

from emoloom.contract import CONTRACT_VERSION

__version__ = "0.1.0"
__all__ = ["CONTRACT_VERSION", "__version__"]
