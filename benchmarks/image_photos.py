"""Real photographs for the image benchmarks (never downloaded at run time).

- scikit-image's bundled photos (astronaut, coffee, chelsea, rocket, camera, hubble_deep_field);
- matplotlib's grace_hopper.jpg when matplotlib is installed;
- the Debian package lomiri-wallpapers-16.04 (`apt-get install lomiri-wallpapers-16.04`): 15 photos from
  1365x1074 to 5312x2988 in /usr/share/backgrounds, when present.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator

import numpy as np

SKIMAGE = ["astronaut", "coffee", "chelsea", "rocket", "camera", "hubble_deep_field"]
WALLPAPERS = "/usr/share/backgrounds"


def small_photos() -> dict[str, np.ndarray]:
    import skimage.data as d

    out = {n: getattr(d, n)() for n in SKIMAGE}
    try:
        import matplotlib.cbook as cb
        from PIL import Image

        with cb.get_sample_data("grace_hopper.jpg") as fh:
            out["grace_hopper"] = np.asarray(Image.open(fh).convert("RGB"))
    except Exception:  # matplotlib missing
        pass
    return out


def wallpaper_paths() -> list[str]:
    return sorted(glob.glob(os.path.join(WALLPAPERS, "*.jpg")))


def load(path: str, max_side: int | None = None) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        im = im.convert("RGB")
        if max_side and max(im.size) > max_side:
            s = max_side / max(im.size)
            im = im.resize((round(im.width * s), round(im.height * s)), Image.LANCZOS)
        return np.asarray(im)


def all_photos(max_side: int | None = None) -> Iterator[tuple[str, np.ndarray]]:
    yield from small_photos().items()
    for p in wallpaper_paths():
        yield os.path.basename(p).rsplit(".", 1)[0], load(p, max_side)
