"""provmark.bench: the robustness benchmark (attacks, metrics, method adapters, corpus, runner, reports).

Import the parts you need; nothing here loads provmark's native core until an adapter for a provmark
engine is used::

    from provmark.bench import attacks, metrics
    out = attacks.get("jpeg(q=50)")(image, seed=0)
"""

from . import attacks, metrics

__all__ = ["adapters", "attacks", "cli", "corpus", "metrics", "report", "runner", "suites"]
