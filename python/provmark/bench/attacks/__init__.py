"""provmark.bench.attacks: deterministic, parameterised attacks on images, audio and video.

Every attack has a stable name (``jpeg(q=50)``, ``mp3(kbps=64)``, ``h264(crf=28)``); build one by name with
:func:`get` and call it on a medium with a seed::

    from provmark.bench import attacks
    a = attacks.get("jpeg(q=50)")            # image is the default modality
    out = a(image_uint8, seed=0)
    b = attacks.get("mp3(kbps=64)", "audio")
    samples, rate = b((samples, rate), seed=0)
    c = attacks.get("crop(area=0.5) | brightness(factor=1.5) | jpeg(q=80)")   # a chain, left to right

Media conventions are described in :mod:`provmark.bench.attacks._base`. Attacks need only numpy, scipy,
Pillow and (for codecs) PyAV; they do not import provmark's native core.
"""

from . import audio, image, video
from ._base import (
    MODALITIES,
    Attack,
    AttackSpec,
    AudioClip,
    Chain,
    VideoClip,
    families,
    get,
    register,
)


def list_attacks(modality: str):
    """Sorted family names of ``modality``."""
    return sorted(families(modality))


__all__ = [
    "MODALITIES",
    "Attack",
    "AttackSpec",
    "AudioClip",
    "Chain",
    "VideoClip",
    "audio",
    "families",
    "get",
    "image",
    "list_attacks",
    "register",
    "video",
]
