"""provmark.bench.attacks: every attack is deterministic, keeps dtype/range, and does what its name says."""

from __future__ import annotations

import io
import math

import numpy as np
import pytest
from PIL import Image

from provmark.bench import attacks
from provmark.bench.attacks import AudioClip, VideoClip
from provmark.bench.attacks import audio as A
from provmark.bench.attacks import image as I
from provmark.bench.attacks import video as V
from provmark.bench.metrics import snr

skimage_data = pytest.importorskip("skimage.data")

# One example per registered family; test_every_family_has_an_example keeps this list complete.
IMAGE_EXAMPLES = [
    "identity()",
    "jpeg(q=50)",
    "jpeg(q=50,subsampling='444')",
    "webp(q=75)",
    "avif(q=50)",
    "resize(scale=0.5)",
    "resize(scale=0.7,back=True)",
    "resize_to(short=96)",
    "crop(area=0.5)",
    "rotate(deg=5)",
    "perspective(strength=0.1)",
    "flip()",
    "blur(radius=2)",
    "median(size=3)",
    "noise(sigma=0.05)",
    "brightness(factor=1.5)",
    "contrast(factor=0.5)",
    "saturation(factor=0.5)",
    "gamma(gamma=2.2)",
    "hue(shift=0.1)",
    "overlay_text(size=0.1)",
    "overlay_logo(size=0.2)",
    "collage(area=0.5)",
    "social()",
    "screenshot()",
    "omniseal()",
]
AUDIO_EXAMPLES = [
    "identity()",
    "mp3(kbps=64)",
    "aac(kbps=64)",
    "opus(kbps=32)",
    "vorbis(kbps=64)",
    "resample(rate=16000)",
    "lowpass(hz=4000)",
    "highpass(hz=500)",
    "bandpass(low=300,high=3400)",
    "white_noise(snr=20)",
    "pink_noise(snr=20)",
    "volume(gain=0.5)",
    "clip(level=0.5)",
    "echo()",
    "time_crop(seconds=0.5)",
    "cut_out(seconds=0.2)",
    "splice(seconds=0.3)",
    "speed(factor=1.05)",
    "invert()",
    "quantize(bits=8)",
]
VIDEO_EXAMPLES = [
    "identity()",
    "h264(crf=28)",
    "hevc(crf=28)",
    "vp9(crf=40)",
    "av1(crf=45)",
    "downscale(height=32)",
    "fps(target=12)",
    "temporal_crop(seconds=0.25)",
    "frame_drop(frac=0.25)",
    "frame_dup(frac=0.25)",
    "frame_swap(frac=0.5)",
    "crop(area=0.5)",
    "brightness(factor=0.5)",
    "contrast(factor=0.5)",
    "flip()",
    "overlay_logo(size=0.3)",
    "h264_crop_brightness()",
]
EXAMPLES = {"image": IMAGE_EXAMPLES, "audio": AUDIO_EXAMPLES, "video": VIDEO_EXAMPLES}


def _photo(h=96, w=128):
    img = skimage_data.astronaut()
    return np.asarray(Image.fromarray(img).resize((w, h), Image.BICUBIC))


def _tone(sr=16000, seconds=1.0, channels=1, amp=0.3, freq=440.0):
    t = np.arange(int(sr * seconds)) / sr
    x = amp * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 1.3 * t))
    x = np.stack([x * (1 - 0.2 * c) for c in range(channels)], axis=1) if channels > 1 else x
    return x.astype(np.float32)


def _clip(t=12, h=48, w=64):
    img = _photo(h, w + 2 * t)
    return VideoClip(np.stack([img[:, 2 * i : 2 * i + w] for i in range(t)]), 24.0)


def _media(modality):
    if modality == "image":
        return _photo()
    if modality == "audio":
        return AudioClip(_tone(), 16000)
    return _clip()


def _equal(a, b):
    if isinstance(a, tuple):
        return all(_equal(x, y) for x, y in zip(a, b, strict=False))
    if isinstance(a, np.ndarray):
        return a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
    return a == b


# ------------------------------------------------------------------------------ registry and names


@pytest.mark.parametrize("modality", attacks.MODALITIES)
def test_every_family_has_an_example(modality):
    covered = {attacks.get(n, modality).family for n in EXAMPLES[modality]}
    assert covered == set(attacks.families(modality))


@pytest.mark.parametrize(("modality", "name"), [(m, n) for m in EXAMPLES for n in EXAMPLES[m]])
def test_deterministic_and_name_round_trips(modality, name):
    a = attacks.get(name, modality)
    if not a.available():
        pytest.skip(f"{name} not available in this installation")
    assert attacks.get(a.name, modality) == a
    m = _media(modality)
    before = m[0].copy() if isinstance(m, tuple) else m.copy()
    out1 = a(m, seed=7)
    out2 = a(m, seed=7)
    assert _equal(out1, out2)
    # the input is never modified
    assert np.array_equal(m[0] if isinstance(m, tuple) else m, before)
    # output type, dtype, channels
    if modality == "image":
        assert out1.dtype == np.uint8 and out1.ndim == 3 and out1.shape[2] == 3
    elif modality == "audio":
        y, sr = out1
        assert y.dtype == np.float32 and y.ndim == 1 and np.all(np.abs(y) <= 1.0) and sr > 0
    else:
        f, fps = out1
        assert f.dtype == np.uint8 and f.ndim == 4 and f.shape[3] == 3 and f.shape[0] >= 1 and fps > 0


@pytest.mark.parametrize(
    "name",
    [
        "crop(area=0.5)",
        "noise(sigma=0.05)",
        "perspective(strength=0.2)",
        "overlay_logo(size=0.2)",
        "collage(area=0.5)",
        "screenshot()",
    ],
)
def test_seed_changes_random_choices(name):
    a = attacks.get(name)
    img = _photo()
    outs = [a(img, seed=s) for s in range(4)]
    assert any(not _equal(outs[0], o) for o in outs[1:])


def test_names_are_canonical_and_chains_parse():
    assert attacks.get("jpeg(q=50)").name == "jpeg(q=50)"
    assert attacks.get("jpeg(50, subsampling='420')").name == "jpeg(q=50)"  # default omitted
    assert attacks.get("jpeg(q=50,subsampling='444')").name == "jpeg(q=50,subsampling='444')"
    assert attacks.get("crop(area=0.5, offset=center)").params["offset"] == "center"
    ch = attacks.get("crop(area=0.5) | brightness(factor=1.5) | jpeg(q=80)")
    assert ch.name == "crop(area=0.5) | brightness(factor=1.5) | jpeg(q=80)"
    assert attacks.get(ch.name) == ch
    out = ch(_photo(), seed=3)
    assert _equal(out, ch(_photo(), seed=3))
    assert attacks.get("jpeg(q=50)").strength == 50.0
    assert attacks.get("omniseal()").strength is None


@pytest.mark.parametrize(
    ("name", "exc"),
    [
        ("nosuch(q=1)", ValueError),
        ("jpeg()", TypeError),
        ("jpeg(q=0)", ValueError),
        ("jpeg(q=50.5)", ValueError),
        ("jpeg(quality=5)", TypeError),
        ("crop(area=1.5)", ValueError),
        ("crop(area=0.5, offset='left')", ValueError),
        ("jpeg(q=50) | ", ValueError),
        ("jpeg(q=__import__('os'))", ValueError),
        ("median(size=4)", ValueError),
        ("rotate(deg='x')", TypeError),
    ],
)
def test_bad_names_raise(name, exc):
    with pytest.raises(exc):
        attacks.get(name)


def test_bad_media_raise():
    a = attacks.get("jpeg(q=50)")
    with pytest.raises(TypeError):
        a([[1, 2], [3, 4]])
    with pytest.raises(ValueError):
        a(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(TypeError):
        a(np.zeros((8, 8, 3), np.int32))
    with pytest.raises(ValueError):
        attacks.get("noise(sigma=0.1)")(np.full((8, 8), np.nan, np.float32))
    with pytest.raises(TypeError):
        a(_photo(), seed=1.5)
    m = attacks.get("mp3(kbps=64)", "audio")
    with pytest.raises(TypeError):
        m(_tone())  # samples without a rate
    with pytest.raises(ValueError):
        m((_tone(), 100))
    with pytest.raises(ValueError):
        attacks.get("lowpass(hz=9000)", "audio")((_tone(), 16000))  # above Nyquist
    with pytest.raises(ValueError):
        attacks.get("h264(crf=28)", "video")((np.zeros((2, 8, 8, 3), np.uint8), 24.0))


# ------------------------------------------------------------------------------ image: dtype and range


@pytest.mark.parametrize("name", IMAGE_EXAMPLES)
def test_image_dtype_range_and_channels(name):
    a = attacks.get(name)
    if not a.available():
        pytest.skip(f"{name} not available")
    img = _photo()
    f32 = img.astype(np.float32) / 255.0
    out = a(f32, seed=1)
    assert out.dtype == np.float32 and out.ndim == 3 and out.shape[2] == 3
    assert out.min() >= 0.0 and out.max() <= 1.0
    gray = img[:, :, 1].copy()
    g = a(gray, seed=1)
    assert g.dtype == np.uint8 and g.ndim == 2
    rgba = np.concatenate([img, np.full((*img.shape[:2], 1), 200, np.uint8)], axis=2)
    o4 = a(rgba, seed=1)
    assert o4.shape[2] == 4 and o4.dtype == np.uint8


# ------------------------------------------------------------------------------ image: semantics


def test_jpeg_size_grows_with_quality_and_attack_is_codec_round_trip():
    img = skimage_data.coffee()
    sizes = [len(I.encode(img, "JPEG", quality=q, subsampling=2)) for q in (10, 30, 50, 70, 90, 95)]
    assert sizes == sorted(sizes) and len(set(sizes)) == len(sizes)
    s420 = len(I.encode(img, "JPEG", quality=75, subsampling=2))
    s444 = len(I.encode(img, "JPEG", quality=75, subsampling=0))
    assert s444 > s420
    out = attacks.get("jpeg(q=30)")(img)
    ref = np.asarray(Image.open(io.BytesIO(I.encode(img, "JPEG", quality=30, subsampling=2))))
    assert np.array_equal(out, ref)
    err = [np.abs(attacks.get(f"jpeg(q={q})")(img).astype(float) - img).mean() for q in (10, 50, 95)]
    assert err[0] > err[1] > err[2] > 0


def test_webp_size_grows_with_quality():
    if not attacks.get("webp(q=50)").available():
        pytest.skip("Pillow without WebP")
    img = skimage_data.coffee()
    sizes = [len(I.encode(img, "WEBP", quality=q)) for q in (10, 50, 90)]
    assert sizes[0] < sizes[1] < sizes[2]


@pytest.mark.parametrize("area", [0.1, 0.25, 0.5, 0.9])
@pytest.mark.parametrize("offset", ["random", "center", (0.0, 1.0)])
def test_crop_keeps_stated_area_and_content(area, offset):
    img = skimage_data.chelsea()  # 300 x 451
    a = attacks.get(f"crop(area={area}, offset={offset!r})")
    out = a(img, seed=5)
    h, w = img.shape[:2]
    ch, cw = out.shape[:2]
    assert abs(ch * cw / (h * w) - area) < 2.5 * (1 / h + 1 / w)
    assert abs(cw / ch - w / h) < 0.02 * w / h
    # the crop is an exact sub-block of the original
    found = [
        (y, x)
        for y in range(h - ch + 1)
        for x in (0, w - cw, (w - cw) // 2)
        if np.array_equal(img[y, x : x + cw], out[0]) and np.array_equal(img[y + ch - 1, x : x + cw], out[-1])
    ]
    if offset == "center":
        assert ((h - ch) // 2, (w - cw) // 2) in found
    elif offset == (0.0, 1.0):
        assert (0, w - cw) in found


def test_resize_sizes():
    img = _photo(100, 150)
    assert attacks.get("resize(scale=0.5)")(img).shape == (50, 75, 3)
    assert attacks.get("resize(scale=2.0)")(img).shape == (200, 300, 3)
    assert attacks.get("resize(scale=0.5,back=True)")(img).shape == (100, 150, 3)
    assert attacks.get("resize_to(short=50)")(img).shape == (50, 75, 3)
    assert attacks.get("social(short=50)")(img).shape == (50, 75, 3)
    assert attacks.get("social()")(img).shape == (100, 150, 3)  # never upscaled by default


def test_rotate_crop_leaves_no_empty_corners():
    white = np.full((120, 160, 3), 255, np.uint8)
    for deg in (2, 5, 10, 30, -45):
        out = attacks.get(f"rotate(deg={deg})")(white)
        assert out.min() >= 250, deg
        assert out.shape[0] < 120 and out.shape[1] < 160
    assert attacks.get("rotate(deg=10,crop=False)")(white).min() == 0  # corners are filled black
    img = _photo()
    assert np.array_equal(attacks.get("rotate(deg=0)")(img), img)


def test_flip_is_an_involution_and_mirrors():
    img = _photo()
    f = attacks.get("flip()")
    assert np.array_equal(f(img)[:, 0], img[:, -1])
    assert np.array_equal(f(f(img)), img)
    assert np.array_equal(attacks.get("flip(axis='v')")(img)[0], img[-1])


def test_photometric_values_by_hand():
    px = np.array([[[100, 50, 200]]], np.uint8).repeat(4, 0).repeat(4, 1)
    assert attacks.get("brightness(factor=2.0)")(px)[0, 0].tolist() == [200, 100, 255]
    assert attacks.get("brightness(factor=0.5)")(px)[0, 0].tolist() == [50, 25, 100]
    # contrast of a constant image: mean grey = luma = 0.299*100 + 0.587*50 + 0.114*200 = 82.05
    c = attacks.get("contrast(factor=0.0)")(px)[0, 0]
    assert c.tolist() == [82, 82, 82]
    assert attacks.get("saturation(factor=0.0)")(px)[0, 0].tolist() == [82, 82, 82]
    g = attacks.get("gamma(gamma=2.0)")(px)[0, 0]
    assert g.tolist() == [
        round(255 * (100 / 255) ** 2),
        round(255 * (50 / 255) ** 2),
        round(255 * (200 / 255) ** 2),
    ]
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 255
    assert attacks.get("hue(shift=0.3333333333)")(red)[0, 0].tolist() == [0, 255, 0]
    img = _photo()
    assert np.abs(attacks.get("hue(shift=0.0)")(img).astype(int) - img).max() <= 1


def test_noise_has_the_stated_sigma():
    flat = np.full((200, 200), 0.5, np.float32)
    out = attacks.get("noise(sigma=0.05)")(flat, seed=2)
    assert abs(float(np.std(out - flat)) - 0.05) < 0.002


def test_blur_and_median_smooth():
    img = _photo()
    hf = lambda a: np.abs(np.diff(a.astype(float), axis=1)).mean()  # noqa: E731
    assert hf(attacks.get("blur(radius=2)")(img)) < 0.6 * hf(img)
    dots = np.zeros((32, 32), np.uint8)
    dots[::7, ::5] = 255  # isolated impulses vanish under a 3x3 median
    assert attacks.get("median(size=3)")(dots).max() == 0


def test_collage_contains_the_image_at_the_stated_area():
    img = _photo(60, 80)
    out = attacks.get("collage(area=0.25)")(img, seed=4)
    assert abs(img.shape[0] * img.shape[1] / (out.shape[0] * out.shape[1]) - 0.25) < 0.02
    hits = [
        (y, x)
        for y in range(out.shape[0] - 59)
        for x in range(out.shape[1] - 79)
        if np.array_equal(out[y, x : x + 80], img[0]) and np.array_equal(out[y + 59, x : x + 80], img[-1])
    ]
    assert len(hits) == 1


def test_overlays_change_only_a_region():
    img = _photo()
    for name in ("overlay_text(size=0.15)", "overlay_logo(size=0.2)"):
        out = attacks.get(name)(img, seed=1)
        changed = np.any(out != img, axis=2)
        assert 0.002 < changed.mean() < 0.3, name


def test_omniseal_is_the_stated_chain():
    img = skimage_data.coffee()
    a = attacks.get("omniseal()")(img, seed=9)
    assert abs(a.shape[0] * a.shape[1] / (img.shape[0] * img.shape[1]) - 0.5) < 0.01
    assert a.mean() > img.mean() * 1.2  # brightness 1.5 (some values clip)


# ------------------------------------------------------------------------------ audio


@pytest.mark.parametrize("name", AUDIO_EXAMPLES)
def test_audio_keeps_int16_and_stereo(name):
    a = attacks.get(name, "audio")
    if not a.available():
        pytest.skip(f"{name} not available")
    x = np.round(_tone(channels=2) * 32767).astype(np.int16)
    y, _sr = a((x, 16000), seed=3)
    assert y.dtype == np.int16 and y.ndim == 2 and y.shape[1] == 2
    assert np.array_equal(y, a((x, 16000), seed=3)[0])


@pytest.mark.parametrize(
    ("codec", "rates"),
    [("mp3", (32, 64, 128)), ("aac", (32, 64, 128)), ("opus", (16, 32, 64)), ("vorbis", (48, 96, 160))],
)
def test_audio_codecs_round_trip_and_follow_the_bitrate(codec, rates):
    if not attacks.get(f"{codec}(kbps=64)", "audio").available():
        pytest.skip(f"{codec} not available")
    sr = 44100
    rng = np.random.default_rng(0)
    x = _tone(sr=sr, seconds=2.0, channels=2) + 0.01 * rng.standard_normal((2 * sr, 2)).astype(np.float32)
    snrs = []
    for kbps in rates:
        y, r = attacks.get(f"{codec}(kbps={kbps})", "audio")((x, sr))
        assert r == sr and y.shape == x.shape and y.dtype == np.float32
        snrs.append(snr(x, y))
    assert snrs[-1] > 10.0, snrs  # decodable, time-aligned and close to the input
    assert snrs[-1] > snrs[0], snrs
    if codec in ("mp3", "aac", "opus"):
        enc = {
            "mp3": ("libmp3lame", "mp3", None),
            "aac": ("aac", "ipod", None),
            "opus": ("libopus", "ogg", 48000),
        }
        c, fmt, er = enc[codec]
        sizes = [len(A.av_encode(x.astype(np.float64), sr, c, k * 1000, fmt, er)) for k in rates]
        assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_resample_changes_the_rate():
    x = _tone(sr=44100, seconds=1.0)
    y, r = attacks.get("resample(rate=16000)", "audio")((x, 44100))
    assert r == 16000 and y.shape[0] == 16000
    z, r2 = attacks.get("resample(rate=16000,back=True)", "audio")((x, 44100))
    assert r2 == 44100 and z.shape == x.shape and snr(x[1000:-1000], z[1000:-1000]) > 30


def _peak_hz(y, sr):
    spec = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    return float(np.argmax(spec) * sr / y.size)


def test_filters_cut_their_bands():
    sr = 16000
    x = (0.1 * np.random.default_rng(1).standard_normal(sr)).astype(np.float32)

    def band_power(y, lo, hi):
        f = np.fft.rfftfreq(y.size, 1 / sr)
        p = np.abs(np.fft.rfft(y)) ** 2
        return p[(f >= lo) & (f < hi)].mean()

    lp = attacks.get("lowpass(hz=2000)", "audio")((x, sr))[0]
    assert 10 * math.log10(band_power(x, 4000, 8000) / band_power(lp, 4000, 8000)) > 40
    assert abs(10 * math.log10(band_power(x, 100, 1000) / band_power(lp, 100, 1000))) < 0.5
    hp = attacks.get("highpass(hz=2000)", "audio")((x, sr))[0]
    assert 10 * math.log10(band_power(x, 50, 800) / band_power(hp, 50, 800)) > 30
    bp = attacks.get("bandpass(low=1000,high=3000)", "audio")((x, sr))[0]
    assert band_power(bp, 1500, 2500) > 100 * band_power(bp, 5000, 8000)


@pytest.mark.parametrize("kind", ["white_noise", "pink_noise"])
@pytest.mark.parametrize("target", [0, 10, 20, 40])
def test_noise_hits_the_target_snr(kind, target):
    x = _tone(sr=16000, seconds=1.0, amp=0.2).astype(np.float64)
    y, _ = attacks.get(f"{kind}(snr={target})", "audio")((x, 16000), seed=4)
    assert abs(snr(x, y) - target) < 0.01


def test_pink_noise_is_pink():
    sr = 16000
    x = np.zeros(4 * sr)
    x[::400] = 0.5  # impulse train: a signal with some power
    y, _ = attacks.get("pink_noise(snr=0)", "audio")((x, sr), seed=1)
    n = y - x
    f = np.fft.rfftfreq(n.size, 1 / sr)
    p = np.abs(np.fft.rfft(n)) ** 2
    low, high = p[(f > 100) & (f < 200)].mean(), p[(f > 3200) & (f < 6400)].mean()
    assert 20 < low / high < 60  # 1/f: 1 decade of f => ~ x32 power between these bands


def test_level_edits():
    x = _tone(amp=0.4).astype(np.float64)
    assert np.allclose(attacks.get("volume(gain=0.5)", "audio")((x, 16000))[0], x * 0.5)
    loud = attacks.get("volume(gain=4.0)", "audio")((x, 16000))[0]
    assert np.max(np.abs(loud)) == 1.0  # clipped to full scale
    c = attacks.get("clip(level=0.5)", "audio")((x, 16000))[0]
    assert math.isclose(np.max(np.abs(c)), 0.5 * np.max(np.abs(x)))
    assert np.array_equal(attacks.get("invert()", "audio")((x, 16000))[0], -x)
    q = attacks.get("quantize(bits=4)", "audio")((x, 16000))[0]
    assert len(np.unique(q)) <= 16 and np.all(np.abs(q * 8 - np.round(q * 8)) < 1e-12)


def test_echo_adds_a_delayed_copy():
    x = np.zeros(16000)
    x[100] = 0.5
    y = attacks.get("echo(delay_ms=50.0,decay=0.5)", "audio")((x, 16000))[0]
    assert y[100] == 0.5 and math.isclose(y[100 + 800], 0.25) and np.count_nonzero(y) == 2


def test_time_edits_have_the_stated_lengths():
    sr = 16000
    x = _tone(sr=sr, seconds=2.0)
    y = attacks.get("time_crop(seconds=0.5)", "audio")((x, sr), seed=1)[0]
    assert y.shape[0] == 8000
    i = int(np.flatnonzero(np.all(np.lib.stride_tricks.sliding_window_view(x, 8000)[:, :50] == y[:50], axis=1))[0])
    assert np.array_equal(x[i : i + 8000], y)
    y = attacks.get("cut_out(seconds=0.25,count=2)", "audio")((x, sr), seed=1)[0]
    assert y.shape[0] == x.shape[0] - 8000
    y = attacks.get("splice(seconds=0.25)", "audio")((x, sr), seed=1)[0]
    assert y.shape[0] == x.shape[0] + 4000


def test_speed_with_and_without_pitch():
    sr = 16000
    t = np.arange(2 * sr) / sr
    x = (0.3 * np.sin(2 * np.pi * 500 * t)).astype(np.float32)
    y, r = attacks.get("speed(factor=1.25)", "audio")((x, sr))
    assert r == sr and abs(y.shape[0] - x.shape[0] / 1.25) <= 2
    assert abs(_peak_hz(y, sr) - 625) < 3
    z, _ = attacks.get("speed(factor=1.25,pitch=False)", "audio")((x, sr))
    assert abs(z.shape[0] - x.shape[0] / 1.25) < 0.02 * x.shape[0]
    assert abs(_peak_hz(z[1000:-1000], sr) - 500) < 3


# ------------------------------------------------------------------------------ video


@pytest.mark.parametrize("codec", ["h264", "hevc", "vp9", "av1"])
def test_video_codecs_round_trip(codec):
    a = attacks.get(f"{codec}(crf=30)", "video")
    if not a.available():
        pytest.skip(f"{codec} encoder not in this FFmpeg")
    clip = _clip(t=10, h=47, w=63)  # odd sizes are padded for 4:2:0 and cropped back
    out, fps = a(clip)
    assert out.shape == clip.frames.shape and fps == clip.fps
    err = np.abs(out.astype(float) - clip.frames).mean()
    assert 0 < err < 12


def test_h264_size_falls_with_crf():
    clip = _clip(t=10, h=48, w=64)
    sizes = [len(V.encode(clip.frames, 24.0, "h264", crf)) for crf in (18, 28, 38)]
    assert sizes[0] > sizes[1] > sizes[2]


def test_video_time_edits():
    clip = _clip(t=24)
    f, fps = attacks.get("fps(target=12)", "video")(clip)
    assert fps == 12.0 and f.shape[0] == 12 and np.array_equal(f[1], clip.frames[2])
    f, _ = attacks.get("fps(target=48)", "video")(clip)
    assert f.shape[0] == 48 and np.array_equal(f[1], clip.frames[0])
    assert attacks.get("temporal_crop(seconds=0.5)", "video")(clip)[0].shape[0] == 12
    f, _ = attacks.get("frame_drop(frac=0.25)", "video")(clip, seed=1)
    assert f.shape[0] == 18
    f, _ = attacks.get("frame_dup(frac=0.25)", "video")(clip, seed=1)
    assert f.shape[0] == 30
    f, _ = attacks.get("frame_swap(frac=0.5)", "video")(clip, seed=1)
    assert f.shape == clip.frames.shape and not np.array_equal(f, clip.frames)
    assert sorted(x.tobytes() for x in f) == sorted(x.tobytes() for x in clip.frames)


def test_video_spatial_edits_are_consistent_over_frames():
    clip = _clip(t=6, h=64, w=80)
    f, _ = attacks.get("crop(area=0.5)", "video")(clip, seed=2)
    assert abs(f.shape[1] * f.shape[2] / (64 * 80) - 0.5) < 0.05
    # same window in every frame: frame i of the crop equals frame i of the input at one fixed offset
    y0 = [
        y
        for y in range(64 - f.shape[1] + 1)
        for x in range(80 - f.shape[2] + 1)
        if np.array_equal(clip.frames[0, y : y + f.shape[1], x : x + f.shape[2]], f[0])
    ]
    assert len(y0) >= 1
    d, _ = attacks.get("downscale(height=32)", "video")(clip)
    assert d.shape == (6, 32, 40, 3)
    logo, _ = attacks.get("overlay_logo(size=0.3)", "video")(clip, seed=3)
    masks = np.any(logo != clip.frames, axis=3)
    assert masks.any() and all(np.array_equal(np.argwhere(masks[0]).min(0), np.argwhere(m).min(0)) for m in masks)
