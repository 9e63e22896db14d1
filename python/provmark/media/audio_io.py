"""Audio file decoding and encoding through PyAV (WAV, FLAC, MP3, OGG/Vorbis, Opus, M4A/AAC).

read_audio(path) -> AudioFile (float32 samples [channels, n] plus what is needed to write the file back in
the same format); write_audio(dst, samples, like, overwrite=False) encodes with the source's codec, sample
rate, channel layout and tags (lossy codecs at the source bitrate or higher), atomically: it writes a
temporary file next to dst and renames it, so a failure never leaves a partial dst, and it refuses to
overwrite an existing file (in particular the input) unless overwrite=True.

PyAV's bundled FFmpeg has no libvorbis: OGG/Vorbis is written with FFmpeg's native Vorbis encoder
(flagged experimental by FFmpeg, at the source bitrate or higher).
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Any

import numpy as np

__all__ = ["AudioFile", "read_audio", "write_audio"]

# decoder codec name -> (encoder name, sample format the encoder is fed, lossy?, minimum bitrate)
_ENCODERS: dict[str, tuple[str, str, bool, int]] = {
    "pcm_s16le": ("pcm_s16le", "s16", False, 0),
    "pcm_s24le": ("pcm_s24le", "s32", False, 0),
    "pcm_s32le": ("pcm_s32le", "s32", False, 0),
    "pcm_f32le": ("pcm_f32le", "flt", False, 0),
    "pcm_f64le": ("pcm_f64le", "dbl", False, 0),
    "pcm_u8": ("pcm_u8", "u8", False, 0),
    "flac": ("flac", "s16", False, 0),
    "mp3": ("libmp3lame", "fltp", True, 32000),
    "mp3float": ("libmp3lame", "fltp", True, 32000),
    "vorbis": ("vorbis", "fltp", True, 64000),
    "opus": ("libopus", "flt", True, 16000),
    "aac": ("aac", "fltp", True, 32000),
}
_CONTAINERS = {
    ".wav": "wav",
    ".flac": "flac",
    ".mp3": "mp3",
    ".ogg": "ogg",
    ".oga": "ogg",
    ".opus": "ogg",
    ".m4a": "ipod",
    ".mp4": "mp4",
    ".aac": "adts",
}


@dataclasses.dataclass
class AudioFile:
    """A decoded audio file."""

    samples: np.ndarray  # float32 [channels, n] in [-1, 1]
    sample_rate: int
    codec: str  # decoder codec name (e.g. "mp3", "vorbis", "pcm_s16le")
    bit_rate: int  # stream (or container) bit rate, 0 when unknown
    layout: str  # channel layout name ("mono", "stereo", ...)
    container: str  # container format name as FFmpeg reports it
    tags: dict[str, str]  # container tags
    stream_tags: dict[str, str]  # audio stream tags
    sample_format: str  # decoded sample format (e.g. "s16", "fltp"), used to keep FLAC/PCM bit depth
    path: str


def _av():
    try:
        import av
    except ImportError as e:  # pragma: no cover - av is a dependency
        raise ImportError("provmark.media.audio_io needs PyAV: pip install av") from e
    return av


def read_audio(path: Any) -> AudioFile:
    """Decode the first audio stream of `path` to float32 [channels, n]."""
    av = _av()
    p = os.fspath(path)
    if not os.path.isfile(p):
        raise FileNotFoundError(f"read_audio: no such file: {p}")
    try:
        with av.open(p, "r") as cont:
            streams = [s for s in cont.streams if s.type == "audio"]
            if not streams:
                raise ValueError(f"read_audio: {p} has no audio stream")
            st = streams[0]
            cc = st.codec_context
            rate = int(cc.sample_rate or 0)
            layout = cc.layout.name if cc.layout is not None else ""
            channels = int(cc.channels or 0)
            if rate <= 0 or channels <= 0:
                raise ValueError(f"read_audio: {p}: audio stream without a sample rate or channels")
            sample_format = cc.format.name if cc.format is not None else ""
            res = av.AudioResampler(format="fltp", layout=layout or None, rate=rate)
            parts: list[np.ndarray] = []
            for frame in cont.decode(st):
                sample_format = frame.format.name or sample_format
                for f in res.resample(frame):
                    parts.append(f.to_ndarray())
            for f in res.resample(None):
                parts.append(f.to_ndarray())
            bit_rate = int(st.bit_rate or cc.bit_rate or cont.bit_rate or 0)
            tags = dict(cont.metadata)
            stream_tags = dict(st.metadata)
            container = cont.format.name
            codec = cc.name
    except (av.error.FFmpegError, UnicodeDecodeError) as e:
        raise ValueError(f"read_audio: {p} is not a decodable audio file: {e}") from e
    if not parts:
        raise ValueError(f"read_audio: {p} contains no audio samples (truncated or empty)")
    x = np.concatenate(parts, axis=1).astype(np.float32, copy=False)
    if x.shape[0] != channels:
        x = x.reshape(channels, -1)
    np.clip(x, -1.0, 1.0, out=x)
    return AudioFile(
        samples=x,
        sample_rate=rate,
        codec=codec,
        bit_rate=bit_rate,
        layout=layout or ("mono" if channels == 1 else "stereo"),
        container=container,
        tags=tags,
        stream_tags=stream_tags,
        sample_format=sample_format,
        path=p,
    )


def _to_float32(samples: Any, channels: int) -> np.ndarray:
    if type(samples).__module__.startswith("torch"):
        samples = samples.detach().cpu().numpy()
    x = np.asarray(samples)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[0] != channels:
        raise ValueError(f"write_audio: samples must have shape ({channels}, n), got {x.shape}")
    if x.dtype == np.int16:
        return x.astype(np.float32) / 32768.0
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"write_audio: samples must be float32/float64 or int16, got {x.dtype}")
    x = x.astype(np.float32)
    if not np.all(np.isfinite(x)):
        raise ValueError("write_audio: samples contain NaN or infinite values")
    return np.clip(x, -1.0, 1.0)


def write_audio(dst: Any, samples: Any, like: AudioFile, *, overwrite: bool = False) -> None:
    """Encode `samples` ([channels, n]) to `dst` in the format of `like` (codec, rate, layout, tags)."""
    av = _av()
    d = os.fspath(dst)
    if os.path.exists(d) and not overwrite:
        if os.path.exists(like.path) and os.path.samefile(d, like.path):
            raise FileExistsError(f"write_audio: refusing to overwrite the input {d} (pass overwrite=True)")
        raise FileExistsError(f"write_audio: {d} exists (pass overwrite=True to replace it)")
    x = _to_float32(samples, like.samples.shape[0])
    if like.codec not in _ENCODERS:
        raise ValueError(f"write_audio: cannot re-encode codec {like.codec!r} (supported: {sorted(_ENCODERS)})")
    enc, fmt, lossy, min_rate = _ENCODERS[like.codec]
    if like.codec == "flac" and like.sample_format.startswith("s32"):
        fmt = "s32"
    ext = os.path.splitext(d)[1].lower()
    container = _CONTAINERS.get(ext)
    if container is None:
        raise ValueError(f"write_audio: unknown output extension {ext!r} (use one of {sorted(_CONTAINERS)})")
    folder = os.path.dirname(os.path.abspath(d))
    fd, tmp = tempfile.mkstemp(prefix=".provmark-", suffix=ext, dir=folder)
    os.close(fd)
    try:
        with av.open(tmp, "w", format=container) as out:
            out.metadata.update(like.tags)
            options = {"strict": "experimental"} if enc == "vorbis" else {}
            st = out.add_stream(enc, rate=like.sample_rate, layout=like.layout, options=options)
            if lossy:
                st.bit_rate = max(int(like.bit_rate or 0), min_rate, 0)
            st.metadata.update(like.stream_tags)
            frame_size = st.codec_context.frame_size or 1024
            res = av.AudioResampler(
                format=fmt, layout=like.layout, rate=like.sample_rate, frame_size=frame_size if frame_size > 0 else None
            )
            pts = 0
            step = 65536
            for i in range(0, x.shape[1], step):
                chunk = np.ascontiguousarray(x[:, i : i + step])
                fr = av.AudioFrame.from_ndarray(chunk, format="fltp", layout=like.layout)
                fr.sample_rate = like.sample_rate
                fr.pts = pts
                pts += chunk.shape[1]
                for f2 in res.resample(fr):
                    for pkt in st.encode(f2):
                        out.mux(pkt)
            for f2 in res.resample(None):
                for pkt in st.encode(f2):
                    out.mux(pkt)
            for pkt in st.encode(None):
                out.mux(pkt)
        os.replace(tmp, d)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
