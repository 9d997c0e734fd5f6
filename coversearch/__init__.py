"""coversearch: musical version identification over Da-TACOS features.

Data flows one way: data -> features -> model -> index -> evaluate -> api -> cli.
Heavy imports (torch, faiss) are deferred to the modules that need them so
light commands (``coversearch query P_22``) stay fast.
"""

__version__ = "0.1.0"
