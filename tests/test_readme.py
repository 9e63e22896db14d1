"""The README's Python example runs as written (on generated inputs), so the README stays true to the code."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from PIL import Image

import test_video_clips as clips  # shared clip helpers (tests/ is on pytest's pythonpath)

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_example_runs(tmp_path, monkeypatch) -> None:
    from skimage import data

    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    Image.fromarray(data.coffee()).save("in.jpg", quality=92)
    Image.fromarray(data.chelsea()).save("gen.png")
    clips.make_clip(tmp_path / "in.mp4", w=256, h=192, seconds=1.0)
    t = np.arange(44100 * 12) / 44100
    tone = 0.2 * np.sin(2 * np.pi * 220 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    noise = 0.02 * np.random.default_rng(1).standard_normal(t.size)
    namespace = {"image": data.astronaut(), "samples": np.stack([tone + noise, tone]).astype(np.float32)}

    exec(compile(blocks[0], str(README), "exec"), namespace)

    import provmark

    assert isinstance(namespace["det"], provmark.Detection)  # the video detection returned a result
    assert Path("wm.key").is_file() and Path("out.jpg").is_file() and Path("out.mp4").is_file()
    assert Path("labeled.png").is_file() and Path("ledger.db").is_file()
    assert namespace["report"].verdict == "intact"
