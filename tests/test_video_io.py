"""provmark.media.video_io: native-layout luma access and the transcode pipeline (no watermark involved).

The pipeline is exercised with a real frame operation: it adds a known offset to the luma samples in place,
and the tests check the offset on decode, so every format/codec/container path is shown to reach the
encoder with the modified samples (and nothing else changed).
"""

from __future__ import annotations

import fractions
import os

import av
import numpy as np
import pytest

import test_video_clips as clips  # shared clip helpers (tests/ is on pytest's pythonpath)
from provmark.media import video_io as vio

OFFSET = 12


def add_offset(frame, index):
    lv = vio.luma_view(frame)
    y = lv.y
    step = OFFSET << (lv.bit_depth - 8) << lv.shift
    top = lv.max_value << lv.shift
    y[...] = np.minimum(y.astype(np.int64) + step, top).astype(y.dtype)


def folder_listing(path) -> list[str]:
    return sorted(os.listdir(path))


def mean_luma_shift(src, dst) -> float:
    a, _ = clips.decode_y(src)
    b, _ = clips.decode_y(dst)
    assert a.shape == b.shape
    keep = a < 235 - OFFSET  # away from clipping
    return float(np.mean((b - a)[keep]))


# ---- luma views in native layouts ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "fmt",
    [
        "yuv420p",
        "yuvj420p",
        "yuv422p",
        "yuv444p",
        "nv12",
        "nv21",
        "yuv420p10le",
        "yuv444p10le",
        "yuv420p12le",
        "p010le",
        "gray",
        "gray10le",
        "yuyv422",
        "uyvy422",
    ],
)
def test_luma_view_matches_swscale_gray(fmt):
    rgb = clips.pan_frames(70, 46, 1)[0]  # width 70: chroma rows of 35 samples, padded line sizes
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=fmt)
    lv = vio.luma_view(frame)
    assert lv.y.shape == (46, 70)
    # reference: swscale repacks the frame to 8-bit planar 4:4:4 of the same range; its plane 0 is read by
    # hand. (swscale's 12-bit -> 16-bit path gave run-to-run different rows in PyAV's FFmpeg, so high bit
    # depths are compared on the 8-bit scale.)
    depth = (
        8
        if fmt in ("yuv420p", "yuvj420p", "yuv422p", "yuv444p", "nv12", "nv21", "gray", "yuyv422", "uyvy422")
        else 12
        if "12" in fmt
        else 10
    )
    ref_fmt = {"yuvj420p": "yuvj444p", "gray": "gray", "gray10le": "gray"}.get(fmt, "yuv444p")
    ref = frame.reformat(format=ref_fmt)
    plane = np.frombuffer(ref.planes[0], np.uint8)[: ref.planes[0].line_size * 46].reshape(46, -1)
    ref_y = plane[:, :70].astype(np.float64)
    assert lv.bit_depth == depth
    got = (lv.y.astype(np.int64) >> lv.shift) / 2.0 ** (depth - 8)
    assert np.abs(got - ref_y).max() <= (1.0 if depth == 8 else 1.5)


@pytest.mark.parametrize("fmt", ["yuv420p", "nv12", "yuv444p", "yuv420p10le", "p010le", "yuyv422"])
def test_luma_view_writes_in_place_and_leaves_chroma(fmt):
    rgb = clips.pan_frames(64, 48, 1)[0]
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=fmt)
    before = [bytes(p) for p in frame.planes]
    lv = vio.luma_view(frame)
    lv.y[10, 20] = 0
    lv.y[11, 21] = lv.max_value << lv.shift
    after = vio.luma_view(frame).y
    assert after[10, 20] == 0 and (int(after[11, 21]) >> lv.shift) == lv.max_value
    if fmt in ("yuyv422",):
        return  # chroma interleaved in the same plane; checked by the swscale comparison above
    for i in range(1, len(frame.planes)):
        assert bytes(frame.planes[i]) == before[i]


@pytest.mark.parametrize("fmt", ["rgb24", "gbrp", "bgra", "gbrp10le"])
def test_luma_view_refuses_formats_without_luma(fmt):
    rgb = clips.pan_frames(32, 32, 1)[0]
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format=fmt)
    assert not vio.has_luma_plane(fmt)
    with pytest.raises(ValueError, match="no luma plane"):
        vio.luma_view(frame)


# ---- transcode round trips ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "codec,ext",
    [
        ("h264", ".mp4"),
        ("h264", ".mkv"),
        ("h264", ".mov"),
        ("hevc", ".mp4"),
        ("hevc", ".mkv"),
        ("vp9", ".webm"),
        ("vp9", ".mkv"),
    ],
)
def test_transcode_applies_frame_op_codecs_containers(tmp_path, codec, ext):
    src = tmp_path / f"src{ext}"
    clips.make_clip(src, w=96, h=64, seconds=1.0, codec=codec)
    dst = tmp_path / f"out{ext}"
    rep = vio.transcode(src, dst, add_offset, crf=12 if codec != "vp9" else 10)
    assert rep.frames == 30
    info = vio.probe(dst)
    assert info.codec == {"h264": "h264", "hevc": "hevc", "vp9": "vp9"}[codec]  # source codec kept
    assert (info.width, info.height) == (96, 64)
    assert abs(mean_luma_shift(src, dst) - OFFSET) < 1.0


@pytest.mark.parametrize(
    "w,h,codec,pix_fmt,ext",
    [
        (97, 71, "vp9", "yuv420p", ".webm"),  # odd sizes, 4:2:0
        (99, 67, "h264", "yuv444p", ".mp4"),  # odd sizes, 4:4:4
        (160, 90, "h264", "yuv420p10le", ".mkv"),  # 10-bit
        (128, 72, "hevc", "yuv420p10le", ".mp4"),
        (64, 64, "rawvideo", "nv12", ".mkv"),  # decoder hands out nv12 frames
        (66, 50, "ffv1", "yuv444p", ".mkv"),
    ],
)
def test_transcode_pixel_formats_and_sizes(tmp_path, w, h, codec, pix_fmt, ext):
    src = tmp_path / f"src{ext}"
    clips.make_clip(src, w=w, h=h, seconds=0.5, codec=codec, pix_fmt=pix_fmt)
    seen = []

    def op(frame, index):
        seen.append(frame.format.name)
        add_offset(frame, index)

    dst = tmp_path / f"out{ext}"
    rep = vio.transcode(src, dst, op, crf=10, workers=2)
    assert set(seen) == {pix_fmt}, "the frame operation must see the decoder's own layout"
    info = vio.probe(dst)
    assert (info.width, info.height) == (w, h)
    if pix_fmt.endswith("10le"):
        assert info.bit_depth == 10 and rep.pix_fmt == pix_fmt
    assert abs(mean_luma_shift(src, dst) - OFFSET) < 1.0


def test_transcode_keeps_timestamps_rotation_colour_tags_chapters(tmp_path):
    src = tmp_path / "src.mp4"
    made = clips.make_clip(
        src,
        w=96,
        h=64,
        seconds=1.0,
        vfr=True,
        rotation=90,
        color_bt709=True,
        tags={"title": "my clip", "comment": "keep me"},
        chapters=True,
        audio=True,
    )
    dst = tmp_path / "out.mp4"
    vio.transcode(src, dst, add_offset)
    a, b = vio.probe(src), vio.probe(dst)
    assert b.rotation == a.rotation == 90
    assert b.color == a.color and b.color["colorspace"] == 1 and b.color["color_range"] == 1
    assert b.tags["title"] == "my clip" and b.tags["comment"] == "keep me"
    assert [c["metadata"].get("title") for c in b.chapters] == ["first", "second"]
    _, pts_b = clips.decode_y(dst)
    tb_a = made["time_base"]
    with av.open(str(dst)) as c:
        tb_b = c.streams.video[0].time_base
    times_a = [round(float(p * tb_a), 3) for p in made["pts"]]
    times_b = [round(float(p * tb_b), 3) for p in pts_b]
    assert times_b == times_a  # VFR timing kept frame by frame
    assert len(set(np.diff(times_a).round(3))) > 1


def test_transcode_copies_audio_and_subtitles(tmp_path):
    base = tmp_path / "base.mkv"
    clips.make_clip(base, w=96, h=64, seconds=1.0, audio=True)
    src = tmp_path / "src.mkv"
    clips.add_subtitles(str(base), str(src), tmp_path)
    dst = tmp_path / "out.mkv"
    rep = vio.transcode(src, dst, add_offset, audio="copy")
    actions = {n["type"]: n["action"] for n in rep.streams}
    assert actions == {"video": "encoded", "audio": "copied", "subtitle": "copied"}

    def packets(path):
        with av.open(str(path)) as c:
            a, t = c.streams.audio[0], c.streams.subtitles[0]
            assert t.language == "fra"
            got = [(p.stream.type, bytes(p)) for p in c.demux(a, t) if p.size]
        return [b for k, b in got if k == "audio"], [b for k, b in got if k == "subtitle"]

    pk_a, subs_a = packets(src)
    pk_b, subs_b = packets(dst)
    assert pk_a == pk_b  # stream copy: identical packets
    assert subs_a == subs_b and len(subs_b) == 2


def test_transcode_audio_op_sees_every_sample(tmp_path):
    src = tmp_path / "src.mp4"
    made = clips.make_clip(src, w=64, h=64, seconds=1.0, audio=True, channels=1)

    class Halve:
        def __init__(self, rate, channels):
            self.channels = channels
            self.n_in = 0

        def push(self, x):
            self.n_in += x.shape[1]
            return x * 0.5

        def flush(self):
            return np.zeros((self.channels, 0), np.float32)

    ops = []

    def factory(rate, channels):
        ops.append(Halve(rate, channels))
        return ops[-1]

    dst = tmp_path / "out.mp4"
    rep = vio.transcode(src, dst, None, audio="mark", audio_op=factory)
    assert [n["action"] for n in rep.streams if n["type"] == "audio"] == ["marked"]
    a = clips.decode_audio(src)
    b = clips.decode_audio(dst)
    assert ops[0].n_in == a.shape[1]
    n = min(a.shape[1], b.shape[1]) - 2048
    ra = np.sqrt(np.mean(a[:, 2048:n] ** 2))
    rb = np.sqrt(np.mean(b[:, 2048:n] ** 2))
    assert 0.4 < rb / ra < 0.6
    assert abs(b.shape[1] - made["audio"].shape[1]) <= 2048


def test_transcode_video_only_and_codec_override(tmp_path):
    src = tmp_path / "src.mp4"
    clips.make_clip(src, w=64, h=64, seconds=0.5)
    dst = tmp_path / "out.mkv"
    rep = vio.transcode(src, dst, add_offset, codec="vp9", crf=20, preset="realtime")
    assert rep.video_codec == "libvpx-vp9" and vio.probe(dst).codec == "vp9"
    assert [n["type"] for n in rep.streams] == ["video"]


def test_transcode_webm_default_codec_is_vp9(tmp_path):
    src = tmp_path / "src.mp4"
    clips.make_clip(src, w=64, h=64, seconds=0.3, audio=True)
    dst = tmp_path / "out.webm"
    rep = vio.transcode(src, dst, None, audio="copy")
    assert rep.video_codec == "libvpx-vp9"
    notes = {n["type"]: n for n in rep.streams}
    assert notes["audio"]["action"] == "dropped" and "webm" in notes["audio"]["reason"]


# ---- bad input ------------------------------------------------------------------------------------------------
def _bad(tmp_path, data: bytes, name="bad.mp4"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def test_bad_inputs_give_clear_errors_and_leave_nothing(tmp_path):
    src = tmp_path / "good.mp4"
    clips.make_clip(src, w=64, h=64, seconds=1.0)
    data = src.read_bytes()
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    cases = {
        "empty.mp4": (b"", "empty"),
        "garbage.mp4": (os.urandom(5000), "not a readable media file|no video stream"),
        "truncated.mp4": (data[: len(data) // 2], "not a readable media file"),
    }
    for name, (blob, msg) in cases.items():
        p = _bad(tmp_path, blob, name)
        with pytest.raises(ValueError, match=msg):
            vio.transcode(p, out_dir / name, add_offset)
    assert folder_listing(out_dir) == []


def test_truncated_matroska_is_refused(tmp_path):
    src = tmp_path / "good.mkv"
    clips.make_clip(src, w=64, h=64, seconds=3.0)
    data = src.read_bytes()
    bad = _bad(tmp_path, data[: len(data) // 2], "cut.mkv")
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(ValueError, match="truncated"):
        vio.transcode(bad, out / "cut.mkv", add_offset)
    assert folder_listing(out) == []


def test_audio_only_and_zero_frame_inputs(tmp_path):
    p = tmp_path / "audio.mka"
    with av.open(str(p), "w", format="matroska") as c:
        a = c.add_stream("aac", rate=48000)
        x = clips.tone(48000, 0.5)
        fr = av.AudioFrame.from_ndarray(x, format="fltp", layout="stereo")
        fr.sample_rate, fr.pts = 48000, 0
        for pk in a.encode(fr):
            c.mux(pk)
        for pk in a.encode(None):
            c.mux(pk)
    with pytest.raises(ValueError, match="no video stream"):
        vio.transcode(p, tmp_path / "o.mp4", add_offset)
    with pytest.raises(ValueError, match="no video stream"):
        vio.probe(p)
    z = tmp_path / "zero.mkv"
    with av.open(str(z), "w", format="matroska") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        c.start_encoding()  # a header with a video stream, and no frame at all
    assert z.stat().st_size > 0
    with pytest.raises(ValueError, match=r"no decodable frames|no video stream|not a readable"):
        vio.transcode(z, tmp_path / "o2.mp4", add_offset)
    assert not (tmp_path / "o.mp4").exists() and not (tmp_path / "o2.mp4").exists()


def test_unsupported_codecs_containers_and_paths(tmp_path):
    src = tmp_path / "src.mp4"
    clips.make_clip(src, w=64, h=64, seconds=0.3)
    with pytest.raises(ValueError, match="no such video encoder"):
        vio.transcode(src, tmp_path / "a.mp4", None, codec="no-such-codec")
    with pytest.raises(ValueError, match="not a video encoder"):
        vio.transcode(src, tmp_path / "b.mp4", None, codec="aac")
    with pytest.raises(ValueError, match="cannot be stored in a webm"):
        vio.transcode(src, tmp_path / "c.webm", None, codec="h264")
    with pytest.raises(ValueError, match="unknown output extension"):
        vio.transcode(src, tmp_path / "d.xyz", None)
    with pytest.raises(ValueError, match="crf"):
        vio.transcode(src, tmp_path / "e.mp4", None, crf=99)
    with pytest.raises(FileNotFoundError):
        vio.transcode(tmp_path / "missing.mp4", tmp_path / "f.mp4", None)
    with pytest.raises(FileExistsError, match="input"):
        vio.transcode(src, src, None)
    other = tmp_path / "exists.mp4"
    other.write_bytes(b"keep")
    with pytest.raises(FileExistsError, match="exists"):
        vio.transcode(src, other, None)
    assert other.read_bytes() == b"keep"
    assert sorted(os.listdir(tmp_path)) == ["exists.mp4", "src.mp4"]


def test_frame_op_error_propagates_and_cleans_up(tmp_path):
    src = tmp_path / "src.mp4"
    clips.make_clip(src, w=64, h=64, seconds=1.0)

    def boom(frame, index):
        if index == 10:
            raise RuntimeError("frame op failed on purpose")

    with pytest.raises(RuntimeError, match="on purpose"):
        vio.transcode(src, tmp_path / "out.mp4", boom)
    assert sorted(os.listdir(tmp_path)) == ["src.mp4"]


def test_overwrite_in_place_is_atomic(tmp_path):
    src = tmp_path / "src.mkv"
    clips.make_clip(src, w=64, h=64, seconds=0.5)
    before, _ = clips.decode_y(src)
    vio.transcode(src, src, add_offset, overwrite=True, crf=10)
    after, _ = clips.decode_y(src)
    keep = before < 235 - OFFSET
    assert abs(float(np.mean((after - before)[keep])) - OFFSET) < 1.0
    assert sorted(os.listdir(tmp_path)) == ["src.mkv"]


def test_iter_frames_bounds_and_sampling(tmp_path):
    src = tmp_path / "src.mp4"
    clips.make_clip(src, w=64, h=64, seconds=2.0)
    all_t = [t for t, _ in vio.iter_frames(src)]
    assert len(all_t) == 60
    first = [t for t, _ in vio.iter_frames(src, max_seconds=1.0)]
    assert len(first) == 30 and max(first) < 1.0
    sampled = [t for t, _ in vio.iter_frames(src, sample_fps=5)]
    assert 9 <= len(sampled) <= 11
    assert np.all(np.diff(sampled) >= 0.19)
    with pytest.raises(ValueError, match="max_seconds"):
        list(vio.iter_frames(src, max_seconds=0))


def test_temp_names_carry_the_pid(tmp_path):
    t = vio.make_temp_path(str(tmp_path / "x.mp4"))
    try:
        assert vio.is_temp_name(t) == os.getpid()
        assert t.endswith(".mp4") and os.path.dirname(t) == str(tmp_path)
    finally:
        os.unlink(t)
    assert vio.is_temp_name("clip.mp4") is None
    assert fractions.Fraction(1, 2)  # keep the import honest


def test_odd_size_to_h264_keeps_the_size_in_444(tmp_path):
    src = tmp_path / "odd.webm"
    clips.make_clip(src, w=97, h=71, seconds=0.3, codec="vp9")
    rep = vio.transcode(src, tmp_path / "odd.mp4", add_offset, codec="h264", crf=10)
    info = vio.probe(tmp_path / "odd.mp4")
    assert (info.width, info.height, info.codec) == (97, 71, "h264")
    assert rep.pix_fmt == "yuv444p"  # x264 cannot take odd sizes in 4:2:0
    assert abs(mean_luma_shift(src, tmp_path / "odd.mp4") - OFFSET) < 1.0


@pytest.mark.parametrize("codec,ext", [("mpeg4", ".avi"), ("mpeg2video", ".mpg")])
def test_constant_rate_codecs_and_program_streams(tmp_path, codec, ext):
    src = tmp_path / f"src{ext.replace('.mpg', '.mkv')}"
    clips.make_clip(src, w=96, h=64, seconds=1.0, codec="mpeg4" if codec == "mpeg4" else "h264", fps=25)
    dst = tmp_path / f"out{ext}"
    rep = vio.transcode(src, dst, add_offset, codec=codec)
    assert rep.frames == 25
    info = vio.probe(dst)
    assert info.codec == codec and float(info.fps) == 25.0
    assert abs(mean_luma_shift(src, dst) - OFFSET) < 1.5
