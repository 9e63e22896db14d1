"""Explicit labels: image/video-frame geometry and legibility, audio rhythm cue timing, text notices."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from PIL import Image

from provmark.labels import (
    ElementRuleError,
    FontNotFoundError,
    ImageLabel,
    LabelError,
    RhythmCue,
    VideoLabeler,
    add_audio_label,
    label_text,
    label_video_frames,
    render_image_label,
    text_notice,
)
from provmark.labels import fonts as fonts_mod
from provmark.labels.explicit_image import POSITIONS


def _masks(w, h, **kw):
    """Text and backdrop pixels, found from the output alone.

    On a black background the box and the outline stay black, so a pixel that turns at least half white is at
    least half covered by a glyph (the text mask). Backdrop-only pixels stay black there and darken a white
    background.
    """
    lab = ImageLabel(w, h, **kw)
    on_black = lab.apply(np.zeros((h, w, 3), np.uint8)).astype(int)
    on_white = lab.apply(np.full((h, w, 3), 255, np.uint8)).astype(int)
    text = on_black.min(axis=2) >= 128
    core = on_black.min(axis=2) >= 250
    backdrop = (on_black.max(axis=2) <= 2) & (on_white.max(axis=2) <= 200)
    return lab, text, core, backdrop


def _text_mask(w, h, **kw):
    lab, text, _core, _backdrop = _masks(w, h, **kw)
    return lab, text


def _glyph_heights(mask):
    """Heights of the column runs (glyphs) in a text mask."""
    cols = np.flatnonzero(mask.any(axis=0))
    runs, start = [], cols[0]
    for a, b in itertools.pairwise(cols):
        if b != a + 1:
            runs.append((start, a + 1))
            start = b
    runs.append((start, cols[-1] + 1))
    out = []
    for a, b in runs:
        rows = np.flatnonzero(mask[:, a:b].any(axis=1))
        out.append(rows[-1] - rows[0] + 1)
    return out


@pytest.mark.parametrize("w,h", [(640, 480), (480, 640), (1920, 1080), (300, 451), (1200, 200), (128, 128)])
@pytest.mark.parametrize("style", ["box", "outline"])
def test_text_height_is_at_least_5_percent_of_short_side(w, h, style):
    lab, mask = _text_mask(w, h, backdrop=style)
    heights = _glyph_heights(mask)
    # "AI生成": A, I and the two ideographs; each measured glyph is >= 5% of the shortest side
    assert len(heights) >= 4
    assert min(heights) >= 0.05 * min(w, h), heights
    assert min(heights) >= lab.required_px - 1  # and the renderer's own figure agrees with the measurement
    # not wildly oversized either (at most 2x the floor or the 10 px minimum)
    assert max(heights) <= max(2.2 * 0.05 * min(w, h), 2.2 * 10)


@pytest.mark.parametrize("position", POSITIONS)
def test_label_sits_at_an_edge_or_corner(position):
    w, h = 800, 600
    lab = ImageLabel(w, h, position=position)
    x0, y0, x1, y1 = lab.box
    slack = round(0.02 * min(w, h)) + 1
    touches = {"left": x0 <= slack, "right": x1 >= w - slack, "top": y0 <= slack, "bottom": y1 >= h - slack}
    named = [side for side in ("left", "right", "top", "bottom") if side in position]
    assert named and all(touches[s] for s in named), (position, lab.box)


def _lum(rgb):
    c = np.asarray(rgb, np.float64) / 255.0
    lin = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return lin @ np.array([0.2126, 0.7152, 0.0722])


@pytest.mark.parametrize("background", ["white", "black", "noise", "gray"])
def test_box_label_is_legible_on_any_background(background, rng):
    w, h = 400, 300
    bg = {
        "white": np.full((h, w, 3), 255, np.uint8),
        "black": np.zeros((h, w, 3), np.uint8),
        "gray": np.full((h, w, 3), 200, np.uint8),
        "noise": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
    }[background]
    lab, _text, core, backdrop = _masks(w, h)
    assert core.sum() > 50 and backdrop.sum() > 500
    out = lab.apply(bg)
    text_l = _lum(out[core]).min()
    box_l = _lum(out[backdrop]).max()
    contrast = (text_l + 0.05) / (box_l + 0.05)
    assert contrast >= 4.5, contrast  # WCAG AA for text


def test_outline_label_has_dark_ring_around_glyphs():
    w, h = 400, 300
    lab, text, _core, backdrop = _masks(w, h, backdrop="outline")
    from scipy.ndimage import binary_dilation  # scikit-image depends on SciPy

    ring = binary_dilation(text, iterations=1) & ~text
    out = lab.apply(np.full((h, w, 3), 255, np.uint8))
    assert _lum(out[ring]).mean() < 0.2  # glyph edges are dark even on white
    assert backdrop.sum() < 0.6 * (lab.patch.shape[0] * lab.patch.shape[1])  # no box


def test_pil_and_dtype_round_trip(rng):
    arr = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    img = render_image_label(Image.fromarray(arr))
    assert isinstance(img, Image.Image) and img.size == (160, 120) and img.mode == "RGB"
    f = render_image_label(arr.astype(np.float32) / 255.0)
    assert f.dtype == np.float32 and f.shape == arr.shape and f.min() >= 0.0 and f.max() <= 1.0
    g = render_image_label(arr[..., 0])
    assert g.shape == (120, 160)
    rgba = render_image_label(np.dstack([arr, np.zeros((120, 160), np.uint8)]))
    assert rgba.shape == (120, 160, 4) and rgba[..., 3].max() > 0
    # outside the label nothing changes
    lab = ImageLabel(160, 120)
    x0, y0, x1, y1 = lab.box
    out = np.asarray(img).copy()
    out[y0:y1, x0:x1] = arr[y0:y1, x0:x1]
    assert np.array_equal(out, arr)


def test_custom_wording_is_checked():
    render_image_label(np.zeros((200, 300, 3), np.uint8), text="人工智能合成")
    with pytest.raises(ElementRuleError):
        render_image_label(np.zeros((200, 300, 3), np.uint8), text="AI")
    with pytest.raises(LabelError, match="height_frac"):
        render_image_label(np.zeros((200, 300, 3), np.uint8), height_frac=0.04)


def test_too_small_image_is_a_clear_error():
    with pytest.raises(LabelError, match="too small"):
        render_image_label(np.zeros((12, 12, 3), np.uint8))
    with pytest.raises(LabelError, match="shape"):
        ImageLabel(100, 100).apply(np.zeros((100, 100, 2), np.uint8))
    with pytest.raises(LabelError, match="prepared for"):
        ImageLabel(100, 100).apply(np.zeros((100, 90, 3), np.uint8))


def test_font_errors(tmp_path, monkeypatch):
    with pytest.raises(FontNotFoundError, match="does not exist"):
        ImageLabel(300, 200, font=str(tmp_path / "nope.ttf"))
    latin = [p for p in fonts_mod._candidates() if "DejaVuSans.ttf" in p]
    if latin:  # a font without CJK glyphs cannot render the default wording
        with pytest.raises(FontNotFoundError, match="no glyph"):
            ImageLabel(300, 200, font=latin[0])
    monkeypatch.delenv("PROVMARK_LABEL_FONT", raising=False)
    monkeypatch.setattr(fonts_mod, "_candidates", lambda: ())
    with pytest.raises(FontNotFoundError, match="fonts-wqy-zenhei"):
        fonts_mod.find_font("AI生成")


@pytest.mark.parametrize("fps,expected", [(25, 50), (30, 60), (29.97, 60), (24, 48), (60, 120), (7.5, 15)])
def test_video_opening_frames_labeled_for_two_seconds(fps, expected):
    vl = VideoLabeler(160, 120, fps)
    assert vl.frames_due == expected
    assert expected / fps >= 2.0  # on screen >= 2 s at normal speed
    frames = np.zeros((expected + 5, 120, 160, 3), np.uint8)
    out = label_video_frames(frames, fps)
    changed = [bool(np.any(out[i] != frames[i])) for i in range(len(frames))]
    assert changed == [True] * expected + [False] * 5
    # generator form gives the same frames
    gen = list(label_video_frames(iter(frames), fps))
    assert all(np.array_equal(a, b) for a, b in zip(gen, out, strict=False))


def test_video_variable_frame_rate_by_timestamp():
    vl = VideoLabeler(160, 120, fps=30)
    pts = [0.0, 0.5, 1.2, 1.99, 2.0, 2.7]
    due = [vl.due(time_s=t) for t in pts]
    assert due == [True, True, True, True, False, False]
    with pytest.raises(LabelError, match=r"2\.0"):
        VideoLabeler(160, 120, fps=30, duration_s=1.5)


# ------------------------------------------------------------------------------------------------------ audio
def _tone_envelope(x, sr, f=1000.0, win_s=0.005):
    """Magnitude of the f-Hz component in short windows (a sliding single-bin DFT)."""
    n = np.arange(len(x))
    z = x * np.exp(-2j * np.pi * f * n / sr)
    win = int(win_s * sr)
    c = np.concatenate([[0], np.cumsum(z)])
    return np.abs(c[win:] - c[:-win]) / win * 2


def _on_intervals(env, sr, thresh):
    on = env > thresh
    edges = np.flatnonzero(np.diff(on.astype(np.int8)))
    if on[0]:
        edges = np.concatenate([[-1], edges])
    if on[-1]:
        edges = np.concatenate([edges, [len(on) - 1]])
    return [((a + 1) / sr, (b + 1) / sr) for a, b in zip(edges[::2], edges[1::2], strict=False)]


@pytest.mark.parametrize("sr", [16000, 44100, 48000])
def test_rhythm_cue_is_short_long_short_short(sr):
    cue = RhythmCue()
    x = cue.render(sr).astype(np.float64)
    assert abs(len(x) / sr - 1.1) < 1e-3
    assert abs(np.max(np.abs(x)) - 10 ** (-12 / 20)) < 0.01
    env = _tone_envelope(x, sr)
    iv = _on_intervals(env, sr, 0.5 * env.max())
    durs = [b - a for a, b in iv]
    gaps = [b[0] - a[1] for a, b in itertools.pairwise(iv)]
    assert len(durs) == 4, iv
    # short-long-short-short: 100/300/100/100 ms tones, 100/300/100 ms gaps (a 5 ms window blurs edges by 5
    # ms)
    for got, want in zip(durs, [0.1, 0.3, 0.1, 0.1], strict=False):
        assert abs(got - want) < 0.012, durs
    for got, want in zip(gaps, [0.1, 0.3, 0.1], strict=False):
        assert abs(got - want) < 0.012, gaps
    spec = np.abs(np.fft.rfft(x))
    assert abs(np.argmax(spec) * sr / len(x) - 1000) < 2


def test_cue_mixed_over_loud_audio_never_clips(rng):
    sr = 48000
    loud = np.clip(rng.normal(0, 0.6, (3 * sr, 2)), -1, 1).astype(np.float32)
    n_cue = round(1.1 * sr)
    for at in ("start", "end", "both"):
        y = add_audio_label(loud, sr, at=at)
        assert y.shape == loud.shape and y.dtype == np.float32
        changed = np.flatnonzero(np.any(y != loud, axis=1))
        spans = ([(0, n_cue)] if at != "end" else []) + ([(len(y) - n_cue, len(y))] if at != "start" else [])
        for s, e in spans:
            assert np.max(np.abs(y[s:e])) <= 0.999 + 1e-6  # the input peaks at 1.0; the mix stays below
            # the cue stands out: 1 kHz level in its first tone is > 20 dB above the gap after it (ducked
            # noise)
            tone = _tone_envelope(y[s : s + int(0.1 * sr), 0].astype(np.float64), sr, win_s=0.1)[0]
            gap = _tone_envelope(y[s + int(0.1 * sr) : s + int(0.2 * sr), 0].astype(np.float64), sr, win_s=0.1)[0]
            assert tone > 10 * gap
        # only the cue spans and their 20 ms duck ramps changed, and ramps only scale the input down
        ramp = int(0.02 * sr)
        allowed = np.zeros(len(y), bool)
        for s, e in spans:
            allowed[max(0, s - ramp) : min(len(y), e + ramp)] = True
        assert allowed[changed].all()
        outside = ~allowed
        assert np.array_equal(y[outside], loud[outside])
        assert np.all(np.abs(y[allowed]) <= np.maximum(np.abs(loud[allowed]), 0.999) + 1e-6)


def test_int16_and_prepend(rng):
    sr = 16000
    x = rng.integers(-32768, 32767, 2 * sr, dtype=np.int16)
    y = add_audio_label(x, sr, mode="prepend")
    lead = round(1.1 * sr) + round(0.3 * sr)
    assert y.dtype == np.int16 and len(y) == len(x) + lead
    assert np.array_equal(y[lead:], x)
    z = add_audio_label(x, sr)
    assert z.dtype == np.int16 and len(z) == len(x)


def test_spoken_label_clip():
    sr = 16000
    clip = (0.5 * np.sin(2 * np.pi * 300 * np.arange(sr) / sr)).astype(np.float32)
    prog = np.zeros(2 * sr, np.float32)
    y = add_audio_label(prog, sr, spoken=clip, transcript="本内容由人工智能生成")
    assert np.allclose(y[:sr], clip, atol=1e-6)
    with pytest.raises(ElementRuleError):
        add_audio_label(prog, sr, spoken=clip, transcript="本内容由人工生成")
    with pytest.raises(TypeError):
        add_audio_label(prog, sr, spoken=clip, transcript="AI生成", cue=RhythmCue())


@pytest.mark.parametrize(
    "bad,err",
    [
        (dict(samples=np.zeros((0,), np.float32)), LabelError),
        (dict(samples=np.zeros(100, np.uint8)), LabelError),
        (dict(samples=np.full(100, np.nan, np.float32)), LabelError),
        (dict(sample_rate=1000), LabelError),
        (dict(at="middle"), LabelError),
        (dict(mode="overlay"), LabelError),
    ],
)
def test_audio_bad_input(bad, err):
    kw = dict(samples=np.zeros(48000, np.float32), sample_rate=48000)
    kw.update(bad)
    with pytest.raises(err):
        add_audio_label(kw.pop("samples"), kw.pop("sample_rate"), **kw)


def test_audio_too_short_for_both():
    with pytest.raises(LabelError, match="too short"):
        add_audio_label(np.zeros(16000, np.float32), 16000, at="both")


# ------------------------------------------------------------------------------------------------------- text
def test_plain_text_notice_at_start_and_end():
    out = label_text("第一段\n第二段\n", at="both")
    lines = [ln for ln in out.splitlines() if ln]
    assert lines[0] == lines[-1] == "【本内容由AI生成】"
    assert "第一段\n第二段" in out
    assert label_text(out, at="both") == out  # idempotent


def test_markdown_after_front_matter():
    md = "---\ntitle: 报告\n---\n# 标题\n正文\n"
    out = label_text(md, fmt="markdown")
    assert out.startswith("---\ntitle: 报告\n---\n> **本内容由AI生成**\n")
    assert out.endswith("# 标题\n正文\n")
    assert text_notice("AI生成_v2", "markdown") == "> **AI生成\\_v2**"


def test_html_inside_body_and_escaped():
    doc = "<html><head></head><body class='x'><p>hi</p></body></html>"
    out = label_text(doc, fmt="html", at="both")
    assert out.count('class="aigc-label"') == 2
    assert out.index("<body class='x'>") < out.index("aigc-label") < out.index("<p>hi</p>")
    assert out.rindex("aigc-label") < out.index("</body>")
    frag = label_text("<p>x</p>", "AI生成<b>", fmt="html", at="end")
    assert frag.endswith("AI生成&lt;b&gt;</p>\n")


def test_text_bad_input():
    with pytest.raises(ElementRuleError):
        label_text("x", "由模型生成")
    with pytest.raises(TypeError):
        label_text(b"x")
    with pytest.raises(LabelError):
        label_text("x", fmt="rtf")
    with pytest.raises(LabelError):
        label_text("x", "AI生成\n第二行")
