"""Image files: embed_file / detect_file (format, size, metadata, atomic writes), bad files, the CLI."""

from __future__ import annotations

import json
import os
import struct
import zlib

import numpy as np
import pytest
import skimage.data
from PIL import Image, ImageCms

import provmark as pm
from provmark.media import image_io

PAYLOAD = bytes.fromhex("00112233445566ff")
XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"/></x:xmpmeta>'


@pytest.fixture(scope="module")
def key() -> pm.Key:
    return pm.Key.from_bytes(bytes(range(100, 132)))


ICC = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def _exif() -> Image.Exif:
    exif = Image.Exif()
    exif[0x010F] = "provmark-test-camera"  # Make
    return exif


def _write_source(path: str, fmt: str) -> None:
    im = Image.fromarray(skimage.data.coffee())
    kw: dict = {"icc_profile": ICC, "exif": _exif()}
    if fmt == "JPEG" or fmt == "WEBP":
        kw.update(quality=90, xmp=XMP)
    im.save(path, format=fmt, **kw)


def _listing(folder: str) -> list[str]:
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("fmt,ext", [("PNG", ".png"), ("JPEG", ".jpg"), ("WEBP", ".webp")])
def test_embed_file_round_trip_keeps_format_and_metadata(tmp_path, key: pm.Key, fmt: str, ext: str) -> None:
    src = str(tmp_path / f"src{ext}")
    dst = str(tmp_path / f"dst{ext}")
    _write_source(src, fmt)
    pm.image.embed_file(src, dst, PAYLOAD, key)
    with Image.open(src) as a, Image.open(dst) as b:
        assert b.format == fmt and b.size == a.size and b.mode == a.mode
        assert b.info.get("icc_profile") == a.info.get("icc_profile") == ICC
        assert b.getexif().get(0x010F) == "provmark-test-camera"
        if fmt in ("JPEG", "WEBP"):
            assert XMP in (b.info.get("xmp") or b"")
    det = pm.image.detect_file(dst, key)
    assert det.found and det.payload == PAYLOAD
    assert not pm.image.detect_file(src, key).found
    assert _listing(str(tmp_path)) == sorted([os.path.basename(src), os.path.basename(dst)])


def test_jpeg_keeps_source_quantisation(tmp_path, key: pm.Key) -> None:
    src, dst = str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")
    Image.fromarray(skimage.data.astronaut()).save(src, quality=75)
    pm.image.embed_file(src, dst, PAYLOAD, key)
    with Image.open(src) as a, Image.open(dst) as b:
        assert a.quantization == b.quantization
    dst2 = str(tmp_path / "c.jpg")
    pm.image.embed_file(src, dst2, PAYLOAD, key, quality=95)
    assert os.path.getsize(dst2) > os.path.getsize(dst)
    assert pm.image.detect_file(dst, key).payload == PAYLOAD


def test_png_gray_and_rgba(tmp_path, key: pm.Key) -> None:
    for arr in (skimage.data.camera(), np.dstack([skimage.data.coffee(), np.full((400, 600), 200, np.uint8)])):
        src, dst = str(tmp_path / "s.png"), str(tmp_path / "d.png")
        Image.fromarray(arr).save(src)
        pm.image.embed_file(src, dst, PAYLOAD, key)
        with Image.open(dst) as im:
            out = np.asarray(im)
        assert out.shape == arr.shape
        if arr.ndim == 3:
            assert np.array_equal(out[..., 3], arr[..., 3])
        assert pm.image.detect_file(dst, key).payload == PAYLOAD
        os.remove(src)
        os.remove(dst)


def test_refuses_to_overwrite_input(tmp_path, key: pm.Key) -> None:
    src = str(tmp_path / "s.png")
    Image.fromarray(skimage.data.coffee()).save(src)
    before = _read(src)
    with pytest.raises(FileExistsError):
        pm.image.embed_file(src, src, PAYLOAD, key)
    assert _read(src) == before
    other = str(tmp_path / "o.png")
    Image.fromarray(skimage.data.coffee()).save(other)
    with pytest.raises(FileExistsError):
        pm.image.embed_file(src, other, PAYLOAD, key)
    pm.image.embed_file(src, src, PAYLOAD, key, overwrite=True)
    assert pm.image.detect_file(src, key).payload == PAYLOAD
    assert _listing(str(tmp_path)) == ["o.png", "s.png"]


def test_failed_write_leaves_nothing(tmp_path, key: pm.Key) -> None:
    src = str(tmp_path / "s.png")
    Image.fromarray(np.dstack([skimage.data.coffee(), np.full((400, 600), 9, np.uint8)])).save(src)
    with pytest.raises(ValueError, match="alpha"):
        pm.image.embed_file(src, str(tmp_path / "out.jpg"), PAYLOAD, key)  # RGBA into JPEG
    assert _listing(str(tmp_path)) == ["s.png"]


def _png_with_size(path: str, w: int, h: int) -> None:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 10)
    with open(path, "wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def test_bad_files(tmp_path, key: pm.Key) -> None:
    good = str(tmp_path / "g.jpg")
    Image.fromarray(skimage.data.coffee()).save(good, quality=90)
    data = _read(good)
    trunc = str(tmp_path / "t.jpg")
    with open(trunc, "wb") as fh:
        fh.write(data[: len(data) // 3])
    text = str(tmp_path / "x.png")
    with open(text, "w") as fh:
        fh.write("not an image at all")
    empty = str(tmp_path / "e.png")
    open(empty, "wb").close()
    bomb = str(tmp_path / "bomb.png")
    _png_with_size(bomb, 100_000, 100_000)
    for path in (trunc, text, empty, bomb):
        with pytest.raises(ValueError):
            pm.image.detect_file(path, key)
        with pytest.raises(ValueError):
            pm.image.embed_file(path, str(tmp_path / "out.png"), PAYLOAD, key)
    with pytest.raises(FileNotFoundError):
        pm.image.detect_file(str(tmp_path / "missing.png"), key)
    with pytest.raises(ValueError, match="exceeds"):
        image_io.read_image(good, max_pixels=1000)
    tiny = str(tmp_path / "tiny.png")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tiny)
    with pytest.raises(ValueError):
        pm.image.embed_file(tiny, str(tmp_path / "tiny_out.png"), PAYLOAD, key)
    assert not any(n.startswith(("out", "tiny_out", ".provmark")) for n in os.listdir(tmp_path))


def test_cli_embed_detect(tmp_path, key: pm.Key, capsys) -> None:
    """`provmark embed` / `provmark detect` on image files (the real command line, provmark.cli.main)."""
    from provmark.cli import main

    keyfile = str(tmp_path / "k.key")
    key.save(keyfile)
    src, dst = str(tmp_path / "s.png"), str(tmp_path / "d.png")
    Image.fromarray(skimage.data.astronaut()).save(src)
    assert main(["embed", src, dst, "--key", keyfile, "--payload", PAYLOAD.hex(), "-q"]) == 0
    capsys.readouterr()
    report = tmp_path / "report.json"
    assert main(["detect", dst, src, "--key", keyfile, "--json", str(report), "-q"]) == 0
    results = {r["input"]: r["result"] for r in json.loads(report.read_text())["results"]}
    assert results[dst]["found"] and results[dst]["payload"] == PAYLOAD.hex()
    assert not results[src]["found"] and results[src]["payload"] is None
    capsys.readouterr()
    assert main(["detect", src, "--key", keyfile, "-q"]) == 3
    assert "not found" in capsys.readouterr().out
