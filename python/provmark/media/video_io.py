"""Video file decoding, frame access in native YUV layouts, and a pipelined transcode (PyAV).

This module knows containers, codecs and pixel formats; it never computes a watermark. The modality layer
(provmark.video) hands it a per-frame operation and, for audio, a factory of streaming sample operations.

* :func:`probe` reads what a file holds (streams, codec, size, frame rate, rotation, colour, tags, chapters).
* :func:`luma_view` gives a writable ``[H, W]`` numpy view of a frame's luma samples *in place*, in the
  frame's own layout (yuv420p, yuvj*, yuv422p, yuv444p, nv12/nv21/nv16, p010/p016, 9-16-bit planar,
  gray, packed yuyv/uyvy): no RGB conversion, no copy.
* :func:`iter_frames` decodes the first video stream, optionally bounded in time and sampled.
* :func:`transcode` runs demux/decode -> frame operation -> encode/mux as a three-stage pipeline
  (a decoder thread, a pool of frame workers, the muxing thread), keeps timestamps (VFR too), rotation,
  colour metadata, sample aspect ratio, every audio stream (stream-copied, or re-encoded through an audio
  operation), subtitles, chapters and container/stream tags, and writes atomically (temporary file in the
  destination folder, then ``os.replace``); an input is never overwritten unless ``overwrite=True``.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import dataclasses
import fractions
import math
import os
import queue
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

__all__ = [
    "AUDIO_ENCODERS",
    "CONTAINERS",
    "VIDEO_ENCODERS",
    "AudioOp",
    "TranscodeReport",
    "VideoInfo",
    "default_encoder_options",
    "is_temp_name",
    "iter_frames",
    "luma_view",
    "make_temp_path",
    "probe",
    "transcode",
]

# Output extension -> FFmpeg muxer name.
CONTAINERS: dict[str, str] = {
    ".mp4": "mp4",
    ".m4v": "mp4",
    ".mov": "mov",
    ".mkv": "matroska",
    ".webm": "webm",
    ".avi": "avi",
    ".ts": "mpegts",
    ".m2ts": "mpegts",
    ".mpg": "mpeg",
    ".mpeg": "mpeg",
    ".flv": "flv",
    ".3gp": "3gp",
}

# Source codec (decoder name) -> encoder that re-creates it. Anything else is re-encoded as H.264.
VIDEO_ENCODERS: dict[str, str] = {
    "h264": "libx264",
    "hevc": "libx265",
    "vp9": "libvpx-vp9",
    "vp8": "libvpx",
    "av1": "libsvtav1",
    "libdav1d": "libsvtav1",
    "mpeg4": "mpeg4",
    "mpeg2video": "mpeg2video",
    "mpeg1video": "mpeg1video",
    "mjpeg": "mjpeg",
    "prores": "prores_ks",
    "ffv1": "ffv1",
}
# Encoder names the user may pass as `codec=` under their common names.
CODEC_ALIASES: dict[str, str] = {
    "h264": "libx264",
    "avc": "libx264",
    "x264": "libx264",
    "hevc": "libx265",
    "h265": "libx265",
    "x265": "libx265",
    "vp9": "libvpx-vp9",
    "vp8": "libvpx",
    "av1": "libsvtav1",
    "svtav1": "libsvtav1",
    "prores": "prores_ks",
}
# Defaults chosen to leave no visible loss: x264 CRF 18 is the usual "visually lossless" point; x265 CRF 20,
# VP9 CRF 24 and SVT-AV1 CRF 24 sit at similar quality. Codecs without CRF get a generous bit rate.
_DEFAULT_CRF = {"libx264": 18, "libx265": 20, "libvpx-vp9": 24, "libvpx": 8, "libsvtav1": 24}
_DEFAULT_PRESET = {"libx264": "medium", "libx265": "medium", "libsvtav1": "8"}
_BITRATE_ENCODERS = {"mpeg4", "mpeg2video", "mpeg1video", "mjpeg"}
# Preferred codec when the source codec does not fit the output container.
_CONTAINER_DEFAULT = {"webm": "libvpx-vp9", "mpeg": "mpeg2video"}

# Audio decoder name -> (encoder, minimum bit rate for lossy codecs, 0 for lossless).
AUDIO_ENCODERS: dict[str, tuple[str, int]] = {
    "aac": ("aac", 96000),
    "mp3": ("libmp3lame", 96000),
    "mp3float": ("libmp3lame", 96000),
    "opus": ("libopus", 64000),
    "vorbis": ("vorbis", 96000),
    "ac3": ("ac3", 192000),
    "eac3": ("eac3", 192000),
    "mp2": ("mp2", 192000),
    "flac": ("flac", 0),
    "alac": ("alac", 0),
    "pcm_s16le": ("pcm_s16le", 0),
    "pcm_s24le": ("pcm_s24le", 0),
    "pcm_s32le": ("pcm_s32le", 0),
    "pcm_f32le": ("pcm_f32le", 0),
}
_AUDIO_CONTAINER_DEFAULT = {"webm": "libopus"}

# Semi-planar formats whose luma is MSB-aligned in 16-bit words: name -> right shift to the sample value.
_MSB_ALIGNED = {
    "p010le": 6,
    "p010be": 6,
    "p012le": 4,
    "p012be": 4,
    "p016le": 0,
    "p016be": 0,
    "p210le": 6,
    "p210be": 6,
    "p216le": 0,
    "p410le": 6,
    "p410be": 6,
    "p416le": 0,
}
# Packed 4:2:2 formats: name -> byte offset of the first luma sample (luma every 2 bytes).
_PACKED_YUV = {"yuyv422": 0, "yvyu422": 0, "uyvy422": 1}

_TMP_PREFIX = ".provmark-"
# Stream tags that describe the old encoding and would be wrong after re-encoding.
_STALE_TAGS = {
    "encoder",
    "duration",
    "bps",
    "number_of_frames",
    "number_of_bytes",
    "_statistics_tags",
    "_statistics_writing_app",
    "_statistics_writing_date_utc",
    "vendor_id",
    "major_brand",
    "minor_version",
    "compatible_brands",
}


def _av():
    try:
        import av
    except ImportError as e:  # pragma: no cover - av is a dependency
        raise ImportError("provmark.media.video_io needs PyAV: pip install av") from e
    return av


# ----------------------------------------------------------------------------------------------------------
# Temporary files
# ----------------------------------------------------------------------------------------------------------
def make_temp_path(dst: str) -> str:
    """Create an empty temporary file next to ``dst`` (same folder, same extension) and return its path.

    The name is ``.provmark-<pid>-<random><ext>`` so that a batch runner can recognise leftovers of a killed
    process (see :func:`is_temp_name`)."""
    folder = os.path.dirname(os.path.abspath(dst))
    ext = os.path.splitext(dst)[1]
    fd, tmp = tempfile.mkstemp(prefix=f"{_TMP_PREFIX}{os.getpid()}-", suffix=ext, dir=folder)
    os.close(fd)
    return tmp


def is_temp_name(name: str) -> int | None:
    """If ``name`` is a temporary file of :func:`make_temp_path`, the pid that made it, else None."""
    base = os.path.basename(name)
    if not base.startswith(_TMP_PREFIX):
        return None
    pid, sep, _ = base[len(_TMP_PREFIX) :].partition("-")
    return int(pid) if sep and pid.isdigit() else None


def _check_paths(src: str, dst: str, overwrite: bool, fn: str) -> None:
    if not os.path.isfile(src):
        raise FileNotFoundError(f"{fn}: no such file: {src}")
    if os.path.exists(dst):
        if os.path.isdir(dst):
            raise IsADirectoryError(f"{fn}: output {dst} is a directory")
        if not overwrite:
            if os.path.samefile(src, dst):
                raise FileExistsError(f"{fn}: refusing to overwrite the input {dst} (pass overwrite=True)")
            raise FileExistsError(f"{fn}: {dst} exists (pass overwrite=True to replace it)")
    folder = os.path.dirname(os.path.abspath(dst))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"{fn}: output folder {folder} does not exist")


# ----------------------------------------------------------------------------------------------------------
# Probe
# ----------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class VideoInfo:
    """What :func:`probe` found in a file. Times are in seconds."""

    path: str
    container: str  # FFmpeg demuxer name(s), e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    codec: str  # decoder of the first video stream
    width: int
    height: int
    pix_fmt: str  # decoded pixel format of the first frame
    bit_depth: int  # luma bits
    fps: fractions.Fraction | None  # average frame rate when known
    duration: float | None  # container duration
    frames: int  # frame count the container declares (0 when unknown)
    rotation: float  # display rotation, degrees counter-clockwise (0 when none)
    color: dict[str, int]  # color_range, colorspace, color_primaries, color_trc (FFmpeg enum values)
    sample_aspect_ratio: fractions.Fraction | None
    tags: dict[str, str]
    chapters: list[dict[str, Any]]
    streams: list[dict[str, Any]]  # every stream: index, type, codec, language, and audio rate/channels


def _open_input(path: str, fn: str):
    av = _av()
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{fn}: no such file: {path}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{fn}: {path} is empty (0 bytes)")
    try:
        return av.open(path, "r")
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise ValueError(f"{fn}: {path} is not a readable media file: {e}") from e


def _video_stream(cont, path: str, fn: str):
    vs = [s for s in cont.streams.video if not (s.disposition.value & 0x400)]  # skip attached pictures
    if not vs:
        kinds = sorted({s.type for s in cont.streams}) or ["nothing"]
        raise ValueError(f"{fn}: {path} has no video stream (it holds {', '.join(kinds)})")
    return vs[0]


def _bit_depth(fmt) -> int:
    comps = [c for c in fmt.components if c.is_luma] or list(fmt.components)
    return int(comps[0].bits) if comps else 8


def _frame_color(frame) -> dict[str, int]:
    return {k: int(getattr(frame, k)) for k in ("color_range", "colorspace", "color_primaries", "color_trc")}


def _first_frame(cont, stream, path: str, fn: str):
    av = _av()
    try:
        for packet in cont.demux(stream):
            for frame in packet.decode():
                return frame
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise ValueError(f"{fn}: {path}: cannot decode the video stream: {e}") from e
    raise ValueError(f"{fn}: {path}: the video stream has no decodable frames (empty or truncated)")


def _stream_summary(s) -> dict[str, Any]:
    d: dict[str, Any] = {
        "index": s.index,
        "type": s.type,
        "codec": s.codec_context.name if s.codec_context is not None else None,
        "language": s.language,
    }
    if s.type == "audio" and s.codec_context is not None:
        d["sample_rate"] = int(s.codec_context.sample_rate or 0)
        d["channels"] = int(s.codec_context.channels or 0)
    return d


def probe(path: Any) -> VideoInfo:
    """Describe ``path``; decodes only the first video frame. Raises ValueError for files without video."""
    p = os.fspath(path)
    av = _av()
    with _open_input(p, "probe") as cont:
        vs = _video_stream(cont, p, "probe")
        first = _first_frame(cont, vs, p, "probe")
        rate = vs.average_rate or vs.guessed_rate
        try:
            chapters = cont.chapters()
        except (AttributeError, av.error.FFmpegError):  # pragma: no cover - older PyAV
            chapters = []
        return VideoInfo(
            path=p,
            container=cont.format.name,
            codec=vs.codec_context.name,
            width=first.width,
            height=first.height,
            pix_fmt=first.format.name,
            bit_depth=_bit_depth(first.format),
            fps=fractions.Fraction(rate) if rate else None,
            duration=(cont.duration / 1e6) if cont.duration else None,
            frames=int(vs.frames or 0),
            rotation=float(first.rotation or 0.0),
            color=_frame_color(first),
            sample_aspect_ratio=vs.sample_aspect_ratio,
            tags=dict(cont.metadata),
            chapters=chapters,
            streams=[_stream_summary(s) for s in cont.streams],
        )


# ----------------------------------------------------------------------------------------------------------
# Luma access in the native layout
# ----------------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class LumaView:
    """Writable view of a frame's luma samples: ``y`` is ``[H, W]`` (uint8, or uint16 for >8-bit) backed by
    the frame's own buffer. ``bit_depth`` is the sample depth; ``shift`` is how far the samples sit above
    bit 0 in their word (6 for p010). Sample value = ``y >> shift``, in ``[0, 2**bit_depth)``."""

    y: np.ndarray
    bit_depth: int
    shift: int = 0

    @property
    def max_value(self) -> int:
        return (1 << self.bit_depth) - 1


def _plane_array(plane, dtype: np.dtype, height: int, width_items: int) -> np.ndarray:
    buf = np.frombuffer(plane, dtype=np.uint8)
    itemsize = dtype.itemsize
    line = int(plane.line_size)
    if line % itemsize:
        raise ValueError(f"luma_view: plane line size {line} is not a multiple of {itemsize}")
    rows = buf[: line * height].reshape(height, line)
    return rows.view(dtype)[:, :width_items]


def has_luma_plane(fmt_name: str) -> bool:
    """Whether :func:`luma_view` can address this pixel format's luma in place."""
    av = _av()
    try:
        fmt = av.VideoFormat(fmt_name)
    except (ValueError, av.error.FFmpegError):
        return False
    if fmt.is_rgb or fmt.has_palette or fmt.is_bayer or fmt.is_bit_stream or fmt.name.startswith("xyz"):
        return False
    if fmt.name in _PACKED_YUV:
        return True
    comps = list(fmt.components)
    if not comps or (not comps[0].is_luma and fmt.name not in _MSB_ALIGNED and not fmt.name.startswith("gray")):
        return False
    # The luma component must sit alone in plane 0 (planar, semi-planar, gray).
    return sum(1 for c in comps if c.plane == 0) == 1 and comps[0].bits <= 16


def luma_view(frame) -> LumaView:
    """A writable ``[H, W]`` view of ``frame``'s luma (see :class:`LumaView`), without copying or converting.

    The frame must own its data (call ``frame.make_writable()`` first on frames that came from a decoder,
    which may still reference them). Raises ValueError for RGB, palette and other formats without luma."""
    fmt = frame.format
    name = fmt.name
    h, w = int(frame.height), int(frame.width)
    if name in _PACKED_YUV:
        raw = _plane_array(frame.planes[0], np.dtype(np.uint8), h, 2 * w)
        return LumaView(raw[:, _PACKED_YUV[name] :: 2], 8, 0)
    if not has_luma_plane(name):
        raise ValueError(f"luma_view: pixel format {name!r} has no luma plane (RGB, palette or packed)")
    depth = _bit_depth(fmt)
    shift = _MSB_ALIGNED.get(name, 0)
    if depth <= 8 and shift == 0:
        return LumaView(_plane_array(frame.planes[0], np.dtype(np.uint8), h, w), depth, 0)
    dtype = np.dtype(">u2" if fmt.is_big_endian else "<u2")
    return LumaView(_plane_array(frame.planes[0], dtype, h, w), depth, shift)


# ----------------------------------------------------------------------------------------------------------
# Decoding
# ----------------------------------------------------------------------------------------------------------
def frame_seconds(frame, fallback_index: int, fps: float | None) -> float:
    """Presentation time of a decoded frame (its pts, or the index over the frame rate when it has none)."""
    if frame.pts is not None and frame.time_base is not None:
        return float(frame.pts * frame.time_base)
    return fallback_index / fps if fps else float(fallback_index)


def iter_frames(
    path: Any, *, max_seconds: float | None = None, sample_fps: float | None = None, skip_nonref: bool = False
) -> Iterator[tuple[float, Any]]:
    """Yield ``(seconds, av.VideoFrame)`` from the first video stream of ``path``.

    max_seconds: stop after this much video (measured from the first frame).
    sample_fps: keep at most this many frames per second (others are decoded but not yielded).
    skip_nonref: ask the decoder to skip non-reference frames (about half the decode work for B-frame
        streams; used by fast checks of long uploads).
    Raises ValueError for unreadable files, files without video, or a stream with no decodable frame."""
    p = os.fspath(path)
    av = _av()
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"iter_frames: max_seconds must be > 0, got {max_seconds!r}")
    if sample_fps is not None and not sample_fps > 0:
        raise ValueError(f"iter_frames: sample_fps must be > 0, got {sample_fps!r}")
    with _open_input(p, "iter_frames") as cont:
        vs = _video_stream(cont, p, "iter_frames")
        vs.thread_type = "AUTO"
        if skip_nonref:
            vs.codec_context.skip_frame = "NONREF"
        rate = vs.average_rate or vs.guessed_rate
        fps = float(rate) if rate else None
        t0: float | None = None
        last_slot = -1
        n = 0
        try:
            for frame in cont.decode(vs):
                t = frame_seconds(frame, n, fps)
                n += 1
                if t0 is None:
                    t0 = t
                if max_seconds is not None and t - t0 >= max_seconds:
                    break
                if sample_fps is not None:
                    slot = math.floor((t - t0) * sample_fps + 1e-6)  # one frame per 1/sample_fps slot
                    if slot <= last_slot:
                        continue
                    last_slot = slot
                yield t, frame
        except (av.error.FFmpegError, UnicodeDecodeError) as e:
            raise ValueError(f"iter_frames: {p}: decoding failed after {n} frames: {e}") from e
        if n == 0:
            raise ValueError(f"iter_frames: {p}: the video stream has no decodable frames (empty or truncated)")


# ----------------------------------------------------------------------------------------------------------
# Transcode
# ----------------------------------------------------------------------------------------------------------
class AudioOp:
    """Interface of a streaming audio operation (see :func:`transcode`): ``push`` takes float32
    ``[channels, n]`` samples and returns the processed samples so far; ``flush`` returns the rest. The
    total output length must equal the total input length."""

    def push(self, samples: np.ndarray) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError

    def flush(self) -> np.ndarray:  # pragma: no cover - interface
        raise NotImplementedError


@dataclasses.dataclass
class TranscodeReport:
    """What :func:`transcode` did."""

    src: str
    dst: str
    video_codec: str  # encoder used
    pix_fmt: str  # encoded pixel format
    options: dict[str, str]  # encoder options
    frames: int  # video frames written
    duration: float  # seconds of video (last frame end - first frame start)
    streams: list[dict[str, Any]]  # per input stream: index, type, action ("encoded", "copied", "marked",
    #                                "dropped") and a reason when dropped or not marked
    seconds: float  # wall time
    expected_duration: float | None = None  # video duration the file declares (None when unknown)
    decode_seconds: float = 0.0  # time the decoder thread spent decoding (its own clock)
    op_seconds: float = 0.0  # time spent in the frame operation, summed over workers

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def resolve_encoder(codec: str | None, src_codec: str, muxer: str, supported: set[str]) -> str:
    """The encoder for ``codec`` (None: re-create ``src_codec``), checked against the output muxer."""
    av = _av()
    if codec is not None:
        if not isinstance(codec, str) or not codec:
            raise TypeError(f"codec must be an encoder name such as 'h264', got {codec!r}")
        name = CODEC_ALIASES.get(codec.lower(), codec)
        try:
            c = av.codec.Codec(name, "w")
        except (av.error.FFmpegError, ValueError) as e:
            raise ValueError(f"codec {codec!r}: this FFmpeg build has no such video encoder") from e
        if c.type != "video":
            raise ValueError(f"codec {codec!r} is not a video encoder")
        if supported and c.name not in supported and c.id not in _ids(supported):
            raise ValueError(f"codec {codec!r} cannot be stored in a {muxer} file")
        return name
    candidates = [VIDEO_ENCODERS.get(src_codec), _CONTAINER_DEFAULT.get(muxer), "libx264", "libvpx-vp9"]
    for name in candidates:
        if name is None:
            continue
        try:
            c = av.codec.Codec(name, "w")
        except (av.error.FFmpegError, ValueError):
            continue
        if not supported or c.name in supported or c.id in _ids(supported):
            return name
    raise ValueError(f"no video encoder in this FFmpeg build can write a {muxer} file")


# FFmpeg's codec query answers "unknown" for most codecs of these muxers although they mux them fine
# (H.264 in MPEG-TS); for them a bad pairing surfaces when the header is written (a ValueError).
_LOOSE_MUXERS = {"mpegts", "avi", "flv"}


def _ids(names: set[str]) -> set[int]:
    av = _av()
    out = set()
    for n in names:
        for mode in ("r", "w"):
            with contextlib.suppress(av.error.FFmpegError, ValueError):
                out.add(av.codec.Codec(n, mode).id)
                break
    return out


def _codec_accepted(codec_name: str, supported: set[str]) -> bool:
    """Whether a stream of decoder/encoder ``codec_name`` can go in a muxer supporting ``supported``."""
    if not supported or codec_name in supported:
        return True
    av = _av()
    try:
        cid = av.codec.Codec(codec_name, "r").id
    except (av.error.FFmpegError, ValueError):
        return False
    return cid in _ids(supported)


def default_encoder_options(encoder: str, crf: int | None, preset: str | None) -> dict[str, str]:
    """Encoder options for ``encoder`` at ``crf``/``preset`` (None: the defaults documented above)."""
    opts: dict[str, str] = {}
    if crf is not None and (isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 63):
        raise ValueError(f"crf must be an int in [0, 63], got {crf!r}")
    if preset is not None and not isinstance(preset, str):
        raise TypeError(f"preset must be a string, got {preset!r}")
    q = crf if crf is not None else _DEFAULT_CRF.get(encoder)
    p = preset if preset is not None else _DEFAULT_PRESET.get(encoder)
    if encoder in ("libx264", "libx265"):
        opts["crf"] = str(q)
        if p:
            opts["preset"] = p
        if encoder == "libx265":
            opts["x265-params"] = "log-level=error"
    elif encoder in ("libvpx-vp9", "libvpx"):
        opts.update({"crf": str(q), "b": "0" if encoder == "libvpx-vp9" else "100M", "row-mt": "1"})
        opts["deadline"] = "good" if p in (None, "good", "medium", "slow") else "realtime"
        opts["cpu-used"] = "2" if opts["deadline"] == "good" else "8"
    elif encoder == "libsvtav1":
        opts["crf"] = str(q)
        if p:
            opts["preset"] = p
    elif crf is not None and encoder not in _BITRATE_ENCODERS:
        opts["crf"] = str(q)
    return opts


def _output_pix_fmt(encoder: str, src_fmt: str, width: int = 2, height: int = 2) -> str:
    """The encoder's pixel format closest to the source's. x264/x265 cannot take odd sizes in subsampled
    chroma, so odd-sized frames keep their size and go to 4:4:4 (needs a High 4:4:4 decoder)."""
    av = _av()
    fmts = [f.name for f in (av.codec.Codec(encoder, "w").video_formats or [])]
    src = av.VideoFormat(src_fmt)
    depth = _bit_depth(src)
    odd = (width % 2 or height % 2) and encoder in ("libx264", "libx265")
    if odd and (src.chroma_width(64) != 64 or src.chroma_height(64) != 64 or not src.is_planar):
        for f in (["yuv444p10le"] if depth > 8 else []) + ["yuv444p"]:
            if f in fmts:
                return f
    if not fmts or src_fmt in fmts:
        return src_fmt
    for f in (["yuv420p10le", "yuv422p10le", "yuv444p10le"] if depth > 8 else []) + ["yuv420p", "yuvj420p"]:
        if f in fmts:
            return f
    return fmts[0]


class _Cancelled(Exception):
    pass


def _put(q: queue.Queue, item: Any, stop: threading.Event) -> None:
    while True:
        if stop.is_set():
            raise _Cancelled
        try:
            q.put(item, timeout=0.1)
            return
        except queue.Full:
            continue


@dataclasses.dataclass
class _AudioOut:
    in_stream: Any
    out_stream: Any
    op: AudioOp
    resampler: Any
    next_pts: int | None = None
    channels: int = 0
    layout: str = ""
    rate: int = 0
    fmt: str = "fltp"


def transcode(
    src: Any,
    dst: Any,
    frame_op: Callable[[Any, int], Any] | None = None,
    *,
    codec: str | None = None,
    crf: int | None = None,
    preset: str | None = None,
    audio: str = "copy",
    audio_op: Callable[[int, int], AudioOp | None] | None = None,
    overwrite: bool = False,
    progress: Callable[[int, int], None] | None = None,
    workers: int | None = None,
    encoder_options: dict[str, str] | None = None,
    max_queue: int = 32,
) -> TranscodeReport:
    """Re-encode ``src`` into ``dst`` applying ``frame_op`` to every video frame.

    frame_op(frame, index) receives a writable decoded ``av.VideoFrame`` in its native pixel format and
        either modifies it in place (returning None) or returns the frame to encode. It runs on a pool of
        ``workers`` threads (default: half the CPUs, at least 1), so it must be thread-safe; output order
        is kept. None: plain transcode (the reference the benchmarks compare against).
    codec/crf/preset: video encoder (default: the source codec when this FFmpeg can encode it and the
        output container takes it, else H.264, VP9 for WebM) and its quality; see default_encoder_options.
    audio: "copy" (stream copy, the default here), "mark" (decode, run ``audio_op(rate, channels)``, encode
        with the source codec at >= its bit rate; a stream whose op is None is copied) or "drop".
    progress(frames_done, frames_total_or_0) is called from the muxing thread.
    Raises FileNotFoundError/FileExistsError/ValueError; nothing is left at ``dst`` on failure."""
    av = _av()
    t_start = time.perf_counter()
    s, d = os.fspath(src), os.fspath(dst)
    if audio not in ("copy", "mark", "drop"):
        raise ValueError(f"transcode: audio must be 'copy', 'mark' or 'drop', got {audio!r}")
    if audio == "mark" and audio_op is None:
        raise ValueError("transcode: audio='mark' needs an audio_op")
    _check_paths(s, d, overwrite, "transcode")
    ext = os.path.splitext(d)[1].lower()
    muxer = CONTAINERS.get(ext)
    if muxer is None:
        raise ValueError(f"transcode: unknown output extension {ext!r} (use one of {sorted(CONTAINERS)})")
    if workers is None:
        workers = max(1, (os.cpu_count() or 2) // 2)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"transcode: workers must be a positive int, got {workers!r}")

    with _open_input(s, "transcode") as probe_cont:
        vs0 = _video_stream(probe_cont, s, "transcode")
        first = _first_frame(probe_cont, vs0, s, "transcode")
        first_info = {
            "codec": vs0.codec_context.name,
            "format": first.format.name,
            "width": first.width,
            "height": first.height,
            "rotation": float(first.rotation or 0.0),
            "color": _frame_color(first),
        }
        del first

    if muxer == "mpeg" and (codec == "mpeg2video" or (codec is None and first_info["codec"] == "mpeg2video")):
        muxer = "dvd"  # MPEG-2 program stream (FFmpeg's "mpeg" muxer is MPEG-1 only)
    tmp = make_temp_path(d)
    stop = threading.Event()
    try:
        with _open_input(s, "transcode") as inp, av.open(tmp, "w", format=muxer) as out:
            report = _run_pipeline(
                av,
                inp,
                out,
                s,
                d,
                muxer,
                first_info,
                frame_op,
                codec,
                crf,
                preset,
                audio,
                audio_op,
                progress,
                workers,
                encoder_options,
                max_queue,
                stop,
            )
        if report.frames == 0:
            raise ValueError(f"transcode: {s}: no video frame could be decoded")
        if report.expected_duration and report.duration < 0.9 * report.expected_duration - 0.5:
            raise ValueError(
                f"transcode: {s} is truncated or corrupt: {report.duration:.2f} s of video decoded, "
                f"the file declares {report.expected_duration:.2f} s"
            )
        os.replace(tmp, d)
        tmp = ""
    except av.error.FFmpegError as e:
        raise ValueError(f"transcode: {s} -> {d}: {e}") from e
    finally:
        stop.set()
        if tmp and os.path.exists(tmp):
            os.unlink(tmp)
    report.seconds = time.perf_counter() - t_start
    return report


def _parse_hms(text: str) -> float | None:
    m = re.fullmatch(r"\s*(\d+):(\d{1,2}):(\d{1,2}(?:\.\d*)?)\s*", text or "")
    if not m:
        return None
    return int(m.group(1)) * 3600 + int(m.group(2)) * 60 + float(m.group(3))


def declared_duration(cont, stream) -> float | None:
    """Duration of ``stream`` as the file declares it: the stream's own duration, its Matroska DURATION tag,
    or the container duration; None when the file says nothing."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    for k, v in stream.metadata.items():
        if k.upper() == "DURATION":
            d = _parse_hms(v)
            if d:
                return d
    if cont.duration:
        return cont.duration / 1e6
    return None


def _clean_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in tags.items() if k.lower() not in _STALE_TAGS}


def _run_pipeline(
    av,
    inp,
    out,
    s,
    d,
    muxer,
    first,
    frame_op,
    codec,
    crf,
    preset,
    audio,
    audio_op,
    progress,
    workers,
    encoder_options,
    max_queue,
    stop,
) -> TranscodeReport:
    supported = set(getattr(out, "supported_codecs", set()) or set()) if muxer not in _LOOSE_MUXERS else set()
    ivs = _video_stream(inp, s, "transcode")
    ivs.thread_type = "AUTO"
    encoder = resolve_encoder(codec, ivs.codec_context.name, muxer, supported)
    opts = default_encoder_options(encoder, crf, preset)
    if encoder_options:
        opts.update({str(k): str(v) for k, v in encoder_options.items()})
    rate = ivs.average_rate or ivs.guessed_rate or fractions.Fraction(25)
    tb = ivs.time_base or fractions.Fraction(1, 90000)
    ovs = out.add_stream(encoder, rate=rate, options=opts)
    ovs.width, ovs.height = first["width"], first["height"]
    pix_fmt = _output_pix_fmt(encoder, first["format"], first["width"], first["height"])
    ovs.pix_fmt = pix_fmt
    cc = ovs.codec_context
    # MPEG-1/2/4 part 2 and MJPEG need the encoder clock at the frame rate (constant rate formats); the
    # others keep the source's time base so that every timestamp (VFR too) passes through unchanged.
    enc_tb = fractions.Fraction(1, 1) / fractions.Fraction(rate) if encoder in _BITRATE_ENCODERS else tb
    if enc_tb.denominator > 65535 and encoder in _BITRATE_ENCODERS:  # pragma: no cover - odd NTSC rates
        enc_tb = fractions.Fraction(enc_tb).limit_denominator(65535)
    cc.time_base = enc_tb
    ovs.time_base = enc_tb
    if encoder in _BITRATE_ENCODERS:
        src_rate = int(ivs.bit_rate or inp.bit_rate or 0)
        px = first["width"] * first["height"] * float(rate)
        cc.bit_rate = max(2 * src_rate, int(px * 0.3))
    for k, v in first["color"].items():
        with contextlib.suppress(ValueError, AttributeError):  # unusual enum values are left unset
            setattr(cc, k, v)
    if ivs.sample_aspect_ratio:
        cc.sample_aspect_ratio = ivs.sample_aspect_ratio
    if first["rotation"]:
        ovs.set_display_rotation(first["rotation"])
    ovs.metadata.update(_clean_tags(dict(ivs.metadata)))
    with contextlib.suppress(AttributeError, TypeError, ValueError):
        ovs.disposition = ivs.disposition
    if encoder == "libsvtav1":
        os.environ.setdefault("SVT_LOG", "1")

    stream_notes: list[dict[str, Any]] = []
    copy_map: dict[int, Any] = {}
    audio_map: dict[int, _AudioOut] = {}
    for ist in inp.streams:
        note: dict[str, Any] = {
            "index": ist.index,
            "type": ist.type,
            "codec": ist.codec_context.name if ist.codec_context is not None else None,
        }
        stream_notes.append(note)
        if ist is ivs:
            note["action"] = "encoded"
            note["encoder"] = encoder
            continue
        if ist.type == "video":
            note["action"], note["reason"] = "dropped", "only the first video stream is re-encoded"
            continue
        if ist.type == "attachment" or ist.type not in ("audio", "subtitle", "data"):
            note["action"], note["reason"] = "dropped", f"{ist.type} streams are not carried over"
            continue
        cname = note["codec"] or ""
        if not cname:
            note["action"] = "dropped"
            note["reason"] = f"{ist.type} stream without a codec (an MP4 chapter track: chapters are rewritten)"
            continue
        if ist.type == "audio" and audio == "drop":
            note["action"], note["reason"] = "dropped", "audio='drop'"
            continue
        if ist.type == "audio" and audio == "mark":
            ao = _setup_audio_mark(av, ist, out, muxer, supported, audio_op, note)
            if ao is not None:
                audio_map[ist.index] = ao
                continue
        if not _codec_accepted(cname, supported):
            note["action"] = "dropped"
            note["reason"] = f"a {muxer} file cannot hold {ist.type} codec {cname!r}"
            continue
        try:
            ost = out.add_stream_from_template(ist)
        except (av.error.FFmpegError, ValueError) as e:
            note["action"], note["reason"] = "dropped", f"cannot copy: {e}"
            continue
        ost.metadata.update(_clean_tags(dict(ist.metadata)))
        copy_map[ist.index] = ost
        note.setdefault("action", "copied")
    out.metadata.update(_clean_tags(dict(inp.metadata)))
    try:
        chapters = inp.chapters()
        if chapters:
            out.set_chapters(chapters)
    except (AttributeError, av.error.FFmpegError):  # pragma: no cover - older PyAV
        pass

    total = int(ivs.frames or 0)
    if not total and ivs.duration and ivs.time_base and rate:
        total = round(float(ivs.duration * ivs.time_base) * float(rate))
    items: queue.Queue = queue.Queue(maxsize=max_queue)
    pool = cf.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="provmark-frame")
    op_time = [0.0]
    op_lock = threading.Lock()
    dec_time = [0.0]

    def run_op(frame, index):
        t0 = time.perf_counter()
        frame.make_writable()
        r = frame_op(frame, index)
        if r is not None:
            frame = r
        if frame.format.name != pix_fmt:
            frame = frame.reformat(format=pix_fmt)
        dt = time.perf_counter() - t0
        with op_lock:
            op_time[0] += dt
        return frame

    def producer():
        try:
            index = 0
            streams = [ivs, *[inp.streams[i] for i in copy_map], *[inp.streams[i] for i in audio_map]]
            t_dec = 0.0
            for packet in inp.demux(streams):
                si = packet.stream.index
                if si == ivs.index:
                    t0 = time.perf_counter()
                    frames = packet.decode()
                    t_dec += time.perf_counter() - t0
                    for frame in frames:
                        if frame_op is None:
                            if frame.format.name != pix_fmt:
                                frame = frame.reformat(format=pix_fmt)
                            _put(items, ("v", frame), stop)
                        else:
                            _put(items, ("v", pool.submit(run_op, frame, index)), stop)
                        index += 1
                elif si in audio_map:
                    for frame in packet.decode():
                        _put(items, ("a", si, frame), stop)
                    if packet.dts is None and packet.size == 0:
                        _put(items, ("a", si, None), stop)
                elif si in copy_map:
                    if packet.dts is None and packet.size == 0:
                        continue
                    _put(items, ("p", si, packet), stop)
            dec_time[0] = t_dec
            _put(items, ("end",), stop)
        except _Cancelled:
            return
        except BaseException as e:
            try:
                _put(items, ("err", e), stop)
            except _Cancelled:
                return

    th = threading.Thread(target=producer, name="provmark-decode", daemon=True)
    th.start()
    n_out = 0
    t_first: float | None = None
    t_last = 0.0
    last_pts = None
    fps = float(rate)
    try:
        while True:
            item = items.get()
            kind = item[0]
            if kind == "end":
                break
            if kind == "err":
                raise item[1]
            if kind == "v":
                frame = item[1].result() if isinstance(item[1], cf.Future) else item[1]
                t = frame_seconds(frame, n_out, fps)
                if frame.pts is None or enc_tb != tb:
                    frame.pts = round(t / enc_tb)
                if last_pts is not None and frame.pts <= last_pts:
                    frame.pts = last_pts + 1  # encoders need strictly increasing pts
                last_pts = frame.pts
                frame.time_base = enc_tb
                t_first = t if t_first is None else t_first
                t_last = t + (1.0 / fps if fps else 0.0)
                frame.pict_type = 0  # let the encoder choose frame types
                for p in ovs.encode(frame):
                    out.mux(p)
                n_out += 1
                if progress is not None:
                    progress(n_out, total)
            elif kind == "p":
                packet = item[2]
                packet.stream = copy_map[item[1]]
                out.mux(packet)
            elif kind == "a":
                _audio_push(av, out, audio_map[item[1]], item[2])
        for p in ovs.encode(None):
            out.mux(p)
        for ao in audio_map.values():
            _audio_push(av, out, ao, None, final=True)
    finally:
        stop.set()
        th.join(timeout=30)
        pool.shutdown(wait=True, cancel_futures=True)
    for n in stream_notes:
        if n["index"] in audio_map:
            n["action"] = "marked"
    return TranscodeReport(
        src=s,
        dst=d,
        video_codec=encoder,
        pix_fmt=pix_fmt,
        options=opts,
        frames=n_out,
        duration=(t_last - t_first) if t_first is not None else 0.0,
        streams=stream_notes,
        seconds=0.0,
        expected_duration=declared_duration(inp, ivs),
        decode_seconds=dec_time[0],
        op_seconds=op_time[0],
    )


def _setup_audio_mark(av, ist, out, muxer, supported, audio_op, note) -> _AudioOut | None:
    cc = ist.codec_context
    rate, channels = int(cc.sample_rate or 0), int(cc.channels or 0)
    if rate <= 0 or channels <= 0:
        note["reason"] = "audio stream without sample rate or channels: copied"
        return None
    op = audio_op(rate, channels)
    if op is None:
        note["reason"] = f"audio watermark not available for {rate} Hz / {channels} ch: copied"
        return None
    enc, min_rate = AUDIO_ENCODERS.get(cc.name, (None, 0))
    if enc is None or not _codec_accepted(enc, supported):
        enc = _AUDIO_CONTAINER_DEFAULT.get(muxer, "aac")
        min_rate = 128000
    if not _codec_accepted(enc, supported):
        note["reason"] = f"no audio encoder for a {muxer} file: copied"
        return None
    layout = cc.layout.name if cc.layout is not None else ("mono" if channels == 1 else "stereo")
    try:
        ost = out.add_stream(enc, rate=rate)
    except (av.error.FFmpegError, ValueError) as e:
        note["reason"] = f"cannot encode audio with {enc}: {e}; copied"
        return None
    ost.layout = layout
    occ = ost.codec_context
    fmts = [f.name for f in (occ.codec.audio_formats or [])]
    fmt = "fltp" if not fmts or "fltp" in fmts else ("flt" if "flt" in fmts else fmts[0])
    if cc.name == "flac" and cc.format is not None and cc.format.name.startswith("s32") and "s32" in fmts:
        fmt = "s32"
    ost.format = fmt
    if min_rate:
        occ.bit_rate = max(int(ist.bit_rate or cc.bit_rate or 0), min_rate)
    if enc == "vorbis":
        occ.options = {"strict": "experimental"}
        occ.strict_std_compliance = -2 if hasattr(occ, "strict_std_compliance") else None
    ost.time_base = fractions.Fraction(1, rate)
    ost.metadata.update(_clean_tags(dict(ist.metadata)))
    note["encoder"] = enc
    res = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    return _AudioOut(
        in_stream=ist, out_stream=ost, op=op, resampler=res, channels=channels, layout=layout, rate=rate, fmt=fmt
    )


def _audio_emit(av, out, ao: _AudioOut, y: np.ndarray) -> None:
    if y.size == 0:
        return
    y = np.ascontiguousarray(np.clip(y, -1.0, 1.0), dtype=np.float32)
    frame = av.AudioFrame.from_ndarray(y, format="fltp", layout=ao.layout)
    frame.sample_rate = ao.rate
    frame.pts = ao.next_pts
    frame.time_base = fractions.Fraction(1, ao.rate)
    ao.next_pts = (ao.next_pts or 0) + y.shape[1]
    for p in ao.out_stream.encode(frame):
        out.mux(p)


def _audio_push(av, out, ao: _AudioOut, frame, final: bool = False) -> None:
    if frame is not None:
        if ao.next_pts is None:
            ao.next_pts = (
                round(float(frame.pts * frame.time_base) * ao.rate)
                if frame.pts is not None and frame.time_base is not None
                else 0
            )
        for f in ao.resampler.resample(frame):
            _audio_emit(av, out, ao, ao.op.push(f.to_ndarray()))
    if final:
        for f in ao.resampler.resample(None):
            _audio_emit(av, out, ao, ao.op.push(f.to_ndarray()))
        if ao.next_pts is None:
            ao.next_pts = 0
        _audio_emit(av, out, ao, ao.op.flush())
        for p in ao.out_stream.encode(None):
            out.mux(p)
