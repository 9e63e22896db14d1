"""Audio tags through mutagen (tag blocks only; audio frames are not decoded or re-encoded).

MP3: ID3v2 ``TXXX`` frame with description ``AIGC``. FLAC and Ogg (Vorbis, Opus, FLAC, Speex): Vorbis comment
``AIGC=<json>``. Both carry the bare JSON.
"""

from __future__ import annotations

from ..errors import AigcFormatError


def _mutagen():
    try:
        import mutagen  # noqa: F401
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise ImportError("writing audio tags needs the 'mutagen' package (pip install mutagen)") from exc


def mp3_read(path: str) -> list[tuple[str, str]]:
    _mutagen()
    from mutagen.id3 import ID3, ID3NoHeaderError
    from mutagen.id3._util import ID3JunkFrameError

    try:
        tags = ID3(path)
    except ID3NoHeaderError:
        return []
    except (ID3JunkFrameError, Exception) as exc:  # mutagen raises several error types on corrupt tags
        raise AigcFormatError(f"ID3 tag is corrupt: {exc}") from None
    out = []
    for frame in tags.getall("TXXX"):
        if frame.desc == "AIGC":
            out += [("id3:TXXX:AIGC", str(t)) for t in frame.text]
    return out


def mp3_write(path: str, bare: str) -> None:
    _mutagen()
    from mutagen.id3 import ID3, TXXX, ID3NoHeaderError

    try:
        tags = ID3(path)
        version = tags.version[1]
    except ID3NoHeaderError:
        tags, version = ID3(), 4
    tags.delall("TXXX:AIGC")
    tags.add(TXXX(encoding=3, desc="AIGC", text=[bare]))
    tags.save(path, v2_version=3 if version == 3 else 4)


def _vorbis_file(path: str):
    _mutagen()
    import mutagen

    try:
        f = mutagen.File(path)
    except Exception as exc:
        raise AigcFormatError(f"cannot read Vorbis comments of {path!r}: {exc}") from None
    if f is None or not hasattr(f, "tags"):
        raise AigcFormatError(f"{path!r} is not a FLAC or Ogg file mutagen can read")
    return f


def vorbis_read(path: str) -> list[tuple[str, str]]:
    f = _vorbis_file(path)
    if f.tags is None:
        return []
    return [("vorbis:AIGC", v) for k, v in f.tags if k.upper() == "AIGC"]


def vorbis_write(path: str, bare: str) -> None:
    f = _vorbis_file(path)
    if f.tags is None:
        f.add_tags()
    for k in {k for k, _ in f.tags if k.upper() == "AIGC"}:
        del f.tags[k]
    f.tags["AIGC"] = [bare]
    f.save()
