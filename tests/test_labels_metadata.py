"""Implicit metadata label: the GB 45438 Annex E JSON and its file locations (LABELING.md sections 5 and
6)."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import struct
import subprocess

import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from provmark.labels import metadata as md
from provmark.labels.errors import (
    AigcFormatError,
    DuplicateLabelError,
    ExistingLabelError,
    MetadataWriteError,
    UnsupportedFormatError,
)
from provmark.labels.metadata import AigcLabel

CODE = "001191110102MAD55U9H0F10002"
PID = "a3f1c2d4e5f60718293a4b5c6d7e8f90"
CANONICAL = (
    '{"AIGC": {"Label":"1","ContentProducer":"001191XXXXXXXXXXXXXXXX10001",'
    '"ProduceID":"a3f1c2d4e5f60718293a4b5c6d7e8f90","ReservedCode1":"","ContentPropagator":'
    '"001191XXXXXXXXXXXXXXXX10001","PropagateID":"a3f1c2d4e5f60718293a4b5c6d7e8f90","ReservedCode2":""}}'
)


# --------------------------------------------------------------------------------------------------- JSON
# schema
def test_first_write_matches_the_canonical_example_byte_for_byte():
    lab = AigcLabel.first_write("001191XXXXXXXXXXXXXXXX10001", PID)
    assert lab.to_json(wrapped=True) == CANONICAL.replace('{"AIGC": {', '{"AIGC":{')
    assert list(json.loads(lab.to_json())) == list(md.FIELDS)
    assert AigcLabel.parse(CANONICAL) == lab  # wrapped, with the example's whitespace
    assert AigcLabel.parse(lab.to_json()) == lab  # bare
    assert AigcLabel.parse(lab.to_json().encode() + b"\x00") == lab  # C-string writers


def test_charset_rule():
    allowed = [chr(c) for c in range(0x20, 0x80) if md.is_allowed_char(chr(c))]
    assert " " not in allowed and '"' not in allowed and "\\" not in allowed and "\x7f" not in allowed
    assert len(allowed) == 94 - 2  # printable ASCII 0x21..0x7E minus '"' and '\\'
    for bad in ("a b", 'a"b', "a\\b", "中文", "é", "a\tb"):
        with pytest.raises(AigcFormatError, match="Annex E"):
            AigcLabel.first_write(CODE, bad)
    with pytest.raises(AigcFormatError):
        AigcLabel.first_write("某某科技有限公司", PID)


@pytest.mark.parametrize(
    "text,match",
    [
        ('{"Label":1,"ContentProducer":"A","ProduceID":"B"}', "must be a string"),
        ('{"Label":"1","Label":"1","ContentProducer":"A","ProduceID":"B"}', "duplicate keys"),
        (
            '{"AIGC":{"Label":"1","ContentProducer":"A","ContentProducer":"B","ProduceID":"C"}}',
            "duplicate keys",
        ),
        ('{"Label":"4","ContentProducer":"A","ProduceID":"B"}', "Label"),
        ('{"Label":"1","ContentProducer":"A","ProduceID":"B","Extra":"x"}', "unknown keys"),
        ('{"ContentProducer":"A","ProduceID":"B"}', "no Label"),
        ('{"Label":"1","ContentProducer":"A"', "not valid JSON"),
        ('["Label"]', "JSON object"),
        ('{"AIGC":"x"}', "JSON object"),
        ('{"Label":"1","ContentProducer":"中文","ProduceID":"B"}', "Annex E"),
        ('{"Label":"1","ContentProducer":"","ProduceID":"B"}', "needs ContentProducer"),
        ('{"Label":"2","ContentProducer":"A","ProduceID":"B"}', "needs ContentPropagator"),
    ],
)
def test_parse_rejects(text, match):
    with pytest.raises(AigcFormatError, match=match):
        AigcLabel.parse(text)


def test_parse_lenient_mode_still_rejects_structure_errors():
    lab = AigcLabel.parse('{"Label":"1","ContentProducer":"中文","ProduceID":"B"}', strict=False)
    assert lab.content_producer == "中文" and lab.reserved_code1 == ""
    with pytest.raises(AigcFormatError):
        AigcLabel.parse('{"Label":"1","Label":"2"}', strict=False)
    with pytest.raises(AigcFormatError, match="UTF-8"):
        AigcLabel.parse(b'{"Label":"\xff"}')
    with pytest.raises(AigcFormatError):
        lab.to_json()  # a writer never emits a value outside the charset


def test_propagation_keeps_producer_fields():
    lab = AigcLabel.first_write(CODE, PID)
    p = lab.with_propagation("PLATFORM0001", "vid-77", "sig2")
    assert p.same_origin(lab) and p.content_propagator == "PLATFORM0001" and p.propagate_id == "vid-77"
    assert json.loads(p.to_json())["ReservedCode2"] == "sig2"


# ------------------------------------------------------------------------------------------------- test media
def _image(fmt: str) -> bytes:
    rng = np.random.default_rng(7)
    arr = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, fmt)
    return buf.getvalue()


def _av_file(path, fmt, options=None):
    import av

    with av.open(str(path), "w", format=fmt, options=options or {}) as c:
        if fmt in ("mp4", "mov", "matroska", "webm"):
            s = c.add_stream("libvpx-vp9" if fmt == "webm" else "libx264", rate=10)
            s.width, s.height, s.pix_fmt = 64, 48, "yuv420p"
            for i in range(4):
                fr = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 30 * i, np.uint8), format="rgb24")
                for p in s.encode(fr):
                    c.mux(p)
            for p in s.encode():
                c.mux(p)
        else:
            codec = {
                "wav": "pcm_s16le",
                "mp3": "libmp3lame",
                "flac": "flac",
                "ogg": "libopus",
                "ipod": "aac",
            }[fmt]
            s = c.add_stream(codec, rate=48000)
            t = np.arange(24000) / 48000
            fr = av.AudioFrame.from_ndarray(
                (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None, :], format="flt", layout="mono"
            )
            fr.sample_rate = 48000
            for p in s.encode(fr):
                c.mux(p)
            for p in s.encode():
                c.mux(p)


MEDIA = {  # name -> (maker, format)
    "x.jpg": ("JPEG", "jpeg"),
    "x.avif": ("AVIF", "heif"),
    "xmp.avif": ("AVIF+xmp", "heif"),
    "x.png": ("PNG", "png"),
    "x.webp": ("WEBP", "webp"),
    "x.mp4": ("mp4", "mp4"),
    "fast.mp4": ("mp4+faststart", "mp4"),
    "x.mov": ("mov", "mp4"),
    "x.m4a": ("ipod", "mp4"),
    "x.mkv": ("matroska", "mkv"),
    "x.webm": ("webm", "mkv"),
    "x.wav": ("wav", "wav"),
    "x.mp3": ("mp3", "mp3"),
    "x.flac": ("flac", "flac"),
    "x.ogg": ("ogg", "ogg"),
}


def _avif_ok() -> bool:
    from PIL import features

    return bool(features.check("avif"))


if not _avif_ok():  # Pillow built without libavif: no AVIF test files can be made
    MEDIA = {k: v for k, v in MEDIA.items() if not k.endswith(".avif")}


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    for name, (maker, _fmt) in MEDIA.items():
        p = d / name
        if maker in ("JPEG", "PNG", "WEBP", "AVIF"):
            p.write_bytes(_image(maker))
        elif maker == "AVIF+xmp":  # an XMP item already present (written by libavif inside the shared mdat)
            buf = io.BytesIO()
            Image.new("RGB", (32, 24), (200, 10, 10)).save(buf, "AVIF", xmp=b'<x:xmpmeta xmlns:x="adobe:ns:meta/"/>')
            p.write_bytes(buf.getvalue())
        elif maker == "mp4+faststart":
            _av_file(p, "mp4", {"movflags": "faststart"})
        else:
            _av_file(p, maker)
    return d


def _decoded(path):
    """Decoded media content: pixels of an image, or every decoded frame/sample of an AV file."""
    if path.suffix in (".jpg", ".png", ".webp", ".avif"):
        return np.asarray(Image.open(path).convert("RGB"))
    import av

    with av.open(str(path)) as c:
        return [f.to_ndarray() for f in c.decode(c.streams[0])]


def _same_content(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    return len(a) == len(b) and all(np.array_equal(x, y) for x, y in zip(a, b, strict=False))


@pytest.mark.parametrize("name", list(MEDIA))
def test_write_read_every_format(media, tmp_path, name):
    src = media / name
    dst = tmp_path / ("out" + src.suffix)
    lab = AigcLabel.first_write(CODE, PID)
    before = src.read_bytes()
    rep = md.write_label(src, dst, lab)
    assert src.read_bytes() == before  # input untouched
    assert rep.format == MEDIA[name][1] and md.read_label(dst) == lab
    names = [loc.name for loc in rep.locations]
    assert len(names) == len(set(names))  # exactly one block per location
    expected = md.EXPECTED_LOCATIONS[rep.format]
    if expected:
        assert sorted(names) == sorted(expected)
    if rep.format in ("jpeg", "png", "webp", "heif"):
        assert rep.digital_source_type == ("http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",)
    # the media itself is not re-encoded: decoding gives identical pixels / frames / samples
    assert _same_content(_decoded(src), _decoded(dst))
    # rewriting (idempotent) and propagating update in place: still one block per location
    dst2, dst3 = tmp_path / ("again" + src.suffix), tmp_path / ("prop" + src.suffix)
    md.write_label(dst, dst2, lab)
    assert dst2.read_bytes() == dst.read_bytes()  # same label again: byte-identical file, nothing appended
    rep3 = md.propagate(dst2, dst3, "PLATFORM0001", "p-123")
    assert [loc.name for loc in rep3.locations] == names
    got = md.read_label(dst3)
    assert got.same_origin(lab) and (got.content_propagator, got.propagate_id) == ("PLATFORM0001", "p-123")
    # no block was added: the file grows at most by the longer JSON per location (plus alignment padding); it
    # may
    # keep its size when a shorter value leaves padding (MKV Void, MP4 free)
    delta = len(got.to_json()) - len(lab.to_json())
    assert delta < 0
    assert dst3.stat().st_size <= dst.stat().st_size + 4 * len(names)


@pytest.mark.parametrize("name", ["x.jpg", "x.png", "x.webp", "x.wav"])
def test_container_bytes_of_the_media_are_unchanged(media, tmp_path, name):
    src, dst = media / name, tmp_path / ("o" + (media / name).suffix)
    md.write_label(src, dst, AigcLabel.first_write(CODE, PID))
    a, b = src.read_bytes(), dst.read_bytes()
    if name.endswith(".jpg"):  # entropy-coded scan identical
        assert a[a.index(b"\xff\xda") :] == b[b.index(b"\xff\xda") :]
    elif name.endswith(".png"):

        def idat(d):
            return [
                d[i - 4 : i + 4 + struct.unpack(">I", d[i - 4 : i])[0]]
                for i in range(len(d))
                if d[i : i + 4] == b"IDAT"
            ]

        assert idat(a) == idat(b) and idat(a)
    elif name.endswith(".webp"):
        assert a[a.index(b"VP8") : a.index(b"VP8") + 100] in b
    else:
        assert a[a.index(b"data") :] in b


def test_faststart_mp4_offsets_shifted(media, tmp_path):
    src = media / "fast.mp4"
    data = src.read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # moov before media: growing it moves the media data
    dst = tmp_path / "o.mp4"
    md.write_label(src, dst, AigcLabel.first_write(CODE, PID))
    assert dst.read_bytes().index(b"mdat") > data.index(b"mdat")
    assert _same_content(_decoded(src), _decoded(dst))


# ------------------------------------------------------------------------------------- independent readers
def _exiftool(path, unknown=False):
    args = ["exiftool", "-j", "-a", "-G1"] + (["-U"] if unknown else []) + [str(path)]
    return json.loads(subprocess.run(args, capture_output=True, text=True, check=True).stdout)[0]


def _ffprobe(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format_tags:stream_tags", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    j = json.loads(out)
    tags = dict(j.get("format", {}).get("tags", {}))
    for s in j.get("streams", []):
        tags.update(s.get("tags", {}))
    return {k.upper(): v for k, v in tags.items()}


@pytest.mark.skipif(shutil.which("exiftool") is None, reason="exiftool not installed")
@pytest.mark.parametrize("name", list(MEDIA))
def test_exiftool_sees_the_aigc_field(media, tmp_path, name):
    dst = tmp_path / ("o" + (media / name).suffix)
    lab = AigcLabel.first_write(CODE, PID)
    md.write_label(media / name, dst, lab)
    tags = _exiftool(dst, unknown=True)
    values = [
        v
        for k, v in tags.items()
        if isinstance(v, str)
        and k.split(":")[-1].upper().startswith(("AIGC", "USERCOMMENT", "USERDEFINEDTEXT", "UNKNOWN_AIGC"))
    ]
    labels = []
    for v in values:
        try:
            labels.append(AigcLabel.parse(v.removeprefix("(AIGC) ")))  # ID3 TXXX prints as "(description) value"
        except AigcFormatError:
            if v.startswith("(Binary data"):  # exiftool prints unknown RIFF chunks as binary; fetch it with -b
                raw = subprocess.run(
                    ["exiftool", "-b", "-U", "-RIFF:Unknown_AIGC", str(dst)], capture_output=True, check=True
                ).stdout
                labels.append(AigcLabel.parse(raw))
    assert lab in labels, tags
    if MEDIA[name][1] in ("jpeg", "png", "webp", "heif"):
        assert tags.get("XMP-iptcExt:DigitalSourceType", "").endswith("trainedAlgorithmicMedia")
        assert AigcLabel.parse(tags["XMP-TC260:Aigc"]) == lab


@pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe not installed")
@pytest.mark.parametrize("name", ["x.mp4", "fast.mp4", "x.mov", "x.m4a", "x.mkv", "x.webm", "x.mp3", "x.flac", "x.ogg"])
def test_ffprobe_sees_the_aigc_field(media, tmp_path, name):
    dst = tmp_path / ("o" + (media / name).suffix)
    lab = AigcLabel.first_write(CODE, PID)
    md.write_label(media / name, dst, lab)
    assert AigcLabel.parse(_ffprobe(dst)["AIGC"]) == lab


# ----------------------------------------------------------------------------------------------- bad input
def _png_with_text(*pairs) -> bytes:
    info = PngImagePlugin.PngInfo()
    for k, v in pairs:
        info.add_text(k, v)
    buf = io.BytesIO()
    Image.new("RGB", (16, 16)).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def _no_output(tmp_path):
    return sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(("out", ".out")))


def test_malformed_block_in_input(tmp_path):
    src = tmp_path / "in.png"
    src.write_bytes(_png_with_text(("AIGC", '{"Label":"1","ContentProducer":"A"')))
    with pytest.raises(AigcFormatError, match="malformed"):
        md.read_label(src)
    with pytest.raises(AigcFormatError):
        md.write_label(src, tmp_path / "out.png", AigcLabel.first_write(CODE, PID))
    assert _no_output(tmp_path) == []


def test_duplicate_blocks_in_input(tmp_path):
    lab = AigcLabel.first_write(CODE, PID)
    src = tmp_path / "in.png"
    src.write_bytes(_png_with_text(("AIGC", lab.to_json(wrapped=True)), ("AIGC", lab.to_json(wrapped=True))))
    with pytest.raises(DuplicateLabelError, match="more than one"):
        md.read_label(src)
    with pytest.raises(DuplicateLabelError):
        md.write_label(src, tmp_path / "out.png", lab)
    assert _no_output(tmp_path) == []


def test_conflicting_locations(tmp_path, media):
    lab = AigcLabel.first_write(CODE, PID)
    good = tmp_path / "good.jpg"
    md.write_label(media / "x.jpg", good, lab)
    data = good.read_bytes()
    i = data.index(PID.encode())  # first occurrence only (one of the two locations), same length
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(data[:i] + PID[::-1].encode() + data[i + len(PID) :])
    with pytest.raises(DuplicateLabelError, match="disagree"):
        md.read_label(bad)


def test_other_producer_label_is_not_overwritten(tmp_path, media):
    first = tmp_path / "first.wav"
    md.write_label(media / "x.wav", first, AigcLabel.first_write(CODE, PID))
    with pytest.raises(ExistingLabelError, match=r"Art\. 10"):
        md.write_label(first, tmp_path / "out.wav", AigcLabel.first_write("OTHERPROVIDER01", "zz"))
    assert _no_output(tmp_path) == []


def test_unsupported_and_broken_files(tmp_path, media):
    bmp = tmp_path / "in.bmp"
    Image.new("RGB", (8, 8)).save(bmp)
    txt = tmp_path / "in.txt"
    txt.write_text("hello")
    lab = AigcLabel.first_write(CODE, PID)
    for p in (bmp, txt):
        with pytest.raises(UnsupportedFormatError, match="unsupported"):
            md.write_label(p, tmp_path / "out.bin", lab)
    trunc = tmp_path / "trunc.jpg"
    trunc.write_bytes((media / "x.jpg").read_bytes()[:30])
    with pytest.raises(AigcFormatError):
        md.write_label(trunc, tmp_path / "out.jpg", lab)
    png = bytearray((media / "x.png").read_bytes())
    png[40] ^= 0xFF  # corrupt a chunk: CRC mismatch
    bad = tmp_path / "crc.png"
    bad.write_bytes(bytes(png))
    with pytest.raises(AigcFormatError, match="CRC"):
        md.write_label(bad, tmp_path / "out.png", lab)
    assert _no_output(tmp_path) == []
    with pytest.raises(ValueError, match="input"):
        md.write_label(media / "x.png", media / "x.png", lab)
    with pytest.raises(FileNotFoundError):
        md.write_label(media / "x.png", tmp_path / "missing" / "out.png", lab)
    with pytest.raises(TypeError):
        md.write_label(media / "x.png", tmp_path / "out.png", {"Label": "1"})


def test_write_that_does_not_stick_fails_loudly(tmp_path, media, monkeypatch):
    from provmark.labels.metadata import _riff

    monkeypatch.setitem(md._BYTES_IO, "wav", (_riff.wav_read, lambda data, bare, wrapped: data))  # silently drops
    dst = tmp_path / "out.wav"
    dst.write_bytes(b"previous")
    with pytest.raises(MetadataWriteError, match="did not stick"):
        md.write_label(media / "x.wav", dst, AigcLabel.first_write(CODE, PID))
    assert dst.read_bytes() == b"previous"  # the old output is intact, no temp file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.wav"]


def test_existing_xmp_and_exif_are_kept(tmp_path):
    from provmark.labels.metadata import _jpeg, _xmp

    packet = (
        b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        b'<rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmp:CreatorTool="MyTool"/>'
        b"</rdf:RDF></x:xmpmeta>"
    )
    exif = Image.Exif()
    exif[0x010F] = "Canon"
    src = tmp_path / "in.jpg"
    Image.new("RGB", (32, 32), (9, 99, 199)).save(src, "JPEG", exif=exif.tobytes(), xmp=packet)
    dst = tmp_path / "out.jpg"
    lab = AigcLabel.first_write(CODE, PID)
    md.write_label(src, dst, lab)
    merged = _jpeg.read_xmp(dst.read_bytes())
    assert b'CreatorTool="MyTool"' in merged or b"<xmp:CreatorTool>MyTool" in merged
    assert _xmp.read_aigc(merged) == [lab.to_json()]
    with Image.open(dst) as im:
        assert im.getexif()[0x010F] == "Canon"
    # a packet holding the property in attribute form is merged to one element, never duplicated
    attr = packet.replace(
        b'xmp:CreatorTool="MyTool"',
        b'xmlns:TC260="http://www.tc260.org.cn/ns/AIGC/1.0/" TC260:AIGC=\'' + lab.to_json().encode() + b"'",
    )
    assert _xmp.read_aigc(attr) == [lab.to_json()]
    assert _xmp.read_aigc(_xmp.merge(attr, lab.to_json())) == [lab.to_json()]


def test_xmp_with_entities_is_refused():
    from provmark.labels.metadata import _xmp

    bomb = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x:xmpmeta xmlns:x="adobe:ns:meta/"/>'
    with pytest.raises(AigcFormatError, match="DOCTYPE"):
        _xmp.read_aigc(bomb)


@pytest.mark.parametrize("name", list(MEDIA))
def test_corrupted_files_give_clear_errors(media, tmp_path, name):
    """Truncated or bit-flipped labeled files: reading raises a ValueError/OSError subclass or succeeds, never
    anything else (no IndexError, struct.error, warnings...), and a failed write leaves no output."""
    import random

    lab = AigcLabel.first_write(CODE, PID)
    good = tmp_path / ("good" + (media / name).suffix)
    md.write_label(media / name, good, lab)
    data = good.read_bytes()
    rnd = random.Random(name)
    for trial in range(24):
        b = bytearray(data[: rnd.randrange(1, len(data))] if trial % 3 == 0 else data)
        for _ in range(0 if trial % 3 == 0 else rnd.randrange(1, 6)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        bad = tmp_path / ("bad" + good.suffix)
        bad.write_bytes(bytes(b))
        out = tmp_path / ("out" + good.suffix)
        for call in (lambda: md.read_locations(bad), lambda: md.write_label(bad, out, lab)):  # noqa: B023
            with contextlib.suppress(ValueError, OSError):
                call()
        if out.exists():  # a write that went through carries exactly the label
            assert md.read_label(out) == lab
            out.unlink()
        assert not list(tmp_path.glob(".out*"))


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")
@pytest.mark.parametrize("ext,flags", [(".mp4", ["-movflags", "use_metadata_tags+faststart"]), (".mkv", [])])
def test_label_written_by_ffmpeg_is_read_and_updated_in_place(tmp_path, ext, flags):
    lab = AigcLabel.first_write(CODE, PID)
    src = tmp_path / ("ff" + ext)
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=96x64:rate=10",
            "-t",
            "1",
            "-c:v",
            "libx264",
            *flags,
            "-metadata",
            f"AIGC={lab.to_json()}",
            "-metadata",
            "title=keep",
            str(src),
        ],
        check=True,
    )
    assert md.read_label(src) == lab  # an independent writer's block is found
    dst = tmp_path / ("p" + ext)
    rep = md.propagate(src, dst, "PLATFORM0001", "x" * 48)  # longer value: the block grows
    assert len(rep.locations) == 1 and md.read_label(dst).propagate_id == "x" * 48
    tags = _ffprobe(dst)
    assert tags["TITLE"] == "keep" and AigcLabel.parse(tags["AIGC"]) == md.read_label(dst)
    assert _same_content(_decoded(src), _decoded(dst))
