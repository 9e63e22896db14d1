"""Implicit metadata label (GB 45438 6.1 + Annex E) in every file location of LABELING.md section 6 we
support.

=================  ===========================================================================  ==========
format             locations written (all of them, each exactly once)                           JSON shape
=================  ===========================================================================  ==========
JPEG XMP APP1 ``TC260:AIGC``; EXIF UserComment bare; wrapped PNG iTXt ``XML:com.adobe.xmp`` ``TC260:AIGC``;
tEXt ``AIGC`` bare; wrapped WebP ``XMP `` chunk ``TC260:AIGC``; ``EXIF`` chunk UserComment (VP8X form) bare;
wrapped AVIF / HEIF XMP item (``mime`` application/rdf+xml, in ``idat``) ``TC260:AIGC`` bare MP4 / MOV / M4A
``moov/udta/meta`` (``mdta``) key ``AIGC`` bare MKV / WebM ``Segment/Tags/Tag/SimpleTag`` ``TagName=AIGC``
bare WAV RIFF chunk ``AIGC`` bare MP3 ID3v2 ``TXXX:AIGC`` bare FLAC / Ogg Vorbis comment ``AIGC=`` bare
=================  ===========================================================================  ==========

Images also get XMP ``Iptc4xmpExt:DigitalSourceType`` = trainedAlgorithmicMedia. Writes edit container bytes
only (pixels and audio frames are copied, never re-encoded), go to a temporary file in the destination folder,
are read back and compared, and only then replace the destination. The input file is never modified.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..._fileio import atomic_output, same_file
from ..errors import (
    AigcFormatError,
    DuplicateLabelError,
    ExistingLabelError,
    MetadataWriteError,
    UnsupportedFormatError,
)
from . import _bmff, _heif, _jpeg, _mkv, _png, _riff, _tags, _xmp
from .aigc import FIELDS, LABEL_VALUES, AigcLabel, check_value_charset, is_allowed_char

__all__ = [
    "FIELDS",
    "FORMATS",
    "LABEL_VALUES",
    "AigcLabel",
    "Location",
    "MetadataReport",
    "check_value_charset",
    "detect_format",
    "is_allowed_char",
    "propagate",
    "read_digital_source_type",
    "read_label",
    "read_locations",
    "write_label",
]

# : format name -> (reader on bytes | None, writer on bytes | None, reader on path | None, writer on path |
# None)
_BYTES_IO = {
    "jpeg": (_jpeg.read, _jpeg.write),
    "png": (_png.read, _png.write),
    "webp": (_riff.webp_read, _riff.webp_write),
    "heif": (_heif.read, _heif.write),
    "mp4": (_bmff.read, _bmff.write),
    "mkv": (_mkv.read, _mkv.write),
    "wav": (_riff.wav_read, _riff.wav_write),
}
_PATH_IO = {
    "mp3": (_tags.mp3_read, lambda path, bare, wrapped: _tags.mp3_write(path, bare)),
    "flac": (_tags.vorbis_read, lambda path, bare, wrapped: _tags.vorbis_write(path, bare)),
    "ogg": (_tags.vorbis_read, lambda path, bare, wrapped: _tags.vorbis_write(path, bare)),
}
#: Locations each format must carry after a write.
EXPECTED_LOCATIONS = {
    "jpeg": ("xmp:TC260:AIGC", "exif:UserComment"),
    "png": ("xmp:TC260:AIGC", "png:tEXt:AIGC"),
    "webp": ("xmp:TC260:AIGC", "exif:UserComment"),
    "heif": ("xmp:TC260:AIGC",),
    "mp4": None,  # udta/meta or meta, see _bmff
    "mkv": ("mkv:Tags:AIGC",),
    "wav": ("riff:AIGC",),
    "mp3": ("id3:TXXX:AIGC",),
    "flac": ("vorbis:AIGC",),
    "ogg": ("vorbis:AIGC",),
}
FORMATS = tuple(EXPECTED_LOCATIONS)
_IMAGE = ("jpeg", "png", "webp", "heif")


def detect_format(head: bytes, name: str = "") -> str:
    """Format name from the first bytes of a file; raises :class:`UnsupportedFormatError`."""
    if head[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if head[:8] == _png.SIG:
        return "png"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] in (b"RF64", b"BW64"):
        raise UnsupportedFormatError("RF64/BW64 WAV files are not supported; only RIFF WAV (< 4 GiB)")
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"avif", b"heic", b"heix", b"mif1"):
            return "heif"
        if brand in (b"avis", b"msf1", b"hevc", b"heis"):
            raise UnsupportedFormatError(
                f"HEIF/AVIF image sequences ({brand.decode(errors='replace')}) are not supported; still images are"
            )
        return "mp4"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "mkv"
    if head[:4] == b"fLaC":
        return "flac"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and (head[1] & 0xE0) == 0xE0):
        return "mp3"
    raise UnsupportedFormatError(
        f"unsupported file format{f' for {name!r}' if name else ''} (first bytes {head[:12]!r}); supported: "
        "JPEG, PNG, WebP, AVIF/HEIF, MP4/MOV/M4A, MKV/WebM, WAV, MP3, FLAC, Ogg"
    )


@dataclass(frozen=True)
class Location:
    """One ``AIGC`` block found in a file."""

    name: str
    raw: str
    label: AigcLabel | None
    error: str | None = None


@dataclass(frozen=True)
class MetadataReport:
    """Everything the reader found: the format, each block, and the digital source type (images)."""

    format: str
    locations: tuple[Location, ...] = ()
    digital_source_type: tuple[str, ...] = field(default=())

    @property
    def labels(self) -> list[AigcLabel]:
        return [loc.label for loc in self.locations if loc.label is not None]

    @property
    def errors(self) -> list[str]:
        return [f"{loc.name}: {loc.error}" for loc in self.locations if loc.error]

    def label(self) -> AigcLabel | None:
        """The single label, or None; raises on malformed, duplicate or conflicting blocks."""
        if self.errors:
            raise AigcFormatError("malformed AIGC block(s): " + "; ".join(self.errors))
        names = [loc.name for loc in self.locations]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise DuplicateLabelError(f"more than one AIGC block in {dup} (GB 45438 6.1 c) allows one)")
        labs = self.labels
        if not labs:
            return None
        if any(lab != labs[0] for lab in labs[1:]):
            raise DuplicateLabelError(
                "AIGC blocks in different locations of the file disagree: "
                + "; ".join(f"{loc.name}={loc.raw}" for loc in self.locations)
            )
        return labs[0]


def _read_head(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(64)


def read_locations(path: str | os.PathLike, *, strict: bool = True) -> MetadataReport:
    """All ``AIGC`` blocks in the file at ``path``; malformed ones are reported, not raised."""
    path = Path(path)
    fmt = detect_format(_read_head(path), str(path))
    if fmt in _BYTES_IO:
        data = path.read_bytes()
        found = _BYTES_IO[fmt][0](data)
    else:
        data = None
        found = _PATH_IO[fmt][0](str(path))
    locs = []
    for name, raw in found:
        try:
            locs.append(Location(name, raw, AigcLabel.parse(raw, strict=strict)))
        except AigcFormatError as exc:
            locs.append(Location(name, raw, None, str(exc)))
    dst: tuple[str, ...] = ()
    if fmt in _IMAGE:
        dst = tuple(read_digital_source_type(data, fmt))
    return MetadataReport(fmt, tuple(locs), dst)


def read_digital_source_type(data: bytes, fmt: str) -> list[str]:
    readers = {
        "jpeg": _jpeg.read_xmp,
        "png": _png.read_xmp,
        "webp": _riff.webp_read_xmp,
        "heif": _heif.read_xmp,
    }
    xmp = readers[fmt](data)
    return _xmp.read_digital_source_type(xmp) if xmp else []


def read_label(path: str | os.PathLike) -> AigcLabel | None:
    """The file's label, or None when it has none; raises on malformed, duplicate or conflicting blocks."""
    return read_locations(path).label()


def write_label(src: str | os.PathLike, dst: str | os.PathLike, label: AigcLabel) -> MetadataReport:
    """Copy ``src`` to ``dst`` with ``label`` in every metadata location of its format, exactly once each.

    An existing label is updated in place only if its fields 1-4 equal ``label``'s (idempotent rewrite or the
    lawful propagation update of fields 5-7); a different producer label raises :class:`ExistingLabelError`
    (Measures Art. 10), malformed or duplicate blocks raise :class:`AigcFormatError`. ``dst`` must differ from
    ``src``. Returns the read-back report of ``dst``.
    """
    src, dst = Path(src), Path(dst)
    if not isinstance(label, AigcLabel):
        raise TypeError(f"label must be an AigcLabel, got {type(label).__name__}")
    if not src.is_file():
        raise FileNotFoundError(f"input file {str(src)!r} does not exist")
    if dst.exists() and same_file(src, dst):
        raise ValueError(f"output {str(dst)!r} is the input file; refusing to overwrite an input")
    label.validate()
    before = read_locations(src)
    existing = before.label()
    if existing is not None and not existing.same_origin(label):
        raise ExistingLabelError(
            f"{str(src)!r} already carries an AIGC label of producer {existing.content_producer!r}, "
            "ProduceID "
            f"{existing.produce_id!r}; fields 1-4 may not be changed (Measures Art. 10), only propagated"
        )
    bare, wrapped = label.to_json(), label.to_json(wrapped=True)
    fmt = before.format
    with atomic_output(dst) as tmp:
        if fmt in _BYTES_IO:
            new = _BYTES_IO[fmt][1](src.read_bytes(), bare, wrapped)
            with open(tmp, "wb") as f:
                f.write(new)
                f.flush()
                os.fsync(f.fileno())
        else:
            shutil.copyfile(src, tmp)
            _PATH_IO[fmt][1](str(tmp), bare, wrapped)
        after = _check_written(tmp, fmt, label)
    return after


def _check_written(path: Path, fmt: str, label: AigcLabel) -> MetadataReport:
    try:
        rep = read_locations(path)
        got = rep.label()
    except AigcFormatError as exc:
        raise MetadataWriteError(f"AIGC metadata did not read back cleanly from the {fmt} output: {exc}") from None
    names = [loc.name for loc in rep.locations]
    expected = EXPECTED_LOCATIONS[fmt]
    missing = [n for n in expected if n not in names] if expected else ([] if names else ["mp4 mdta AIGC key"])
    if got != label or missing:
        raise MetadataWriteError(
            f"AIGC metadata did not stick in the {fmt} output (missing {missing}, read back {got}); output not written"
        )
    if fmt in _IMAGE and _xmp.DST_TRAINED not in rep.digital_source_type:
        raise MetadataWriteError("IPTC DigitalSourceType did not read back from the XMP packet")
    return rep


def propagate(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    propagator: str,
    propagate_id: str,
    reserved_code2: str = "",
) -> MetadataReport:
    """Platform update (Measures Art. 6): keep fields 1-4 of the existing label, set fields 5-7."""
    existing = read_label(src)
    if existing is None:
        raise AigcFormatError(f"{os.fspath(src)!r} has no AIGC label to propagate")
    return write_label(src, dst, existing.with_propagation(propagator, propagate_id, reserved_code2))
