"""Running CUDA kernel source on host threads (tests only): rewrites kernel launches for a host emulation of
the CUDA runtime, which each test file supplies for the pieces its .cu file uses (tests/test_cuda_math.py for
image_cuda.cu, tests/test_cuda_audio.py for audio_cuda.cu)."""

from __future__ import annotations

import re


def host_launches(cu: str) -> str:
    """``cu`` with every ``kernel<<<grid, block, shmem, stream>>>(args)`` (template kernels included) rewritten
    to ``launch(kernel, grid, block, shmem, stream, args)``, a function of the host emulation."""
    out, i = [], 0
    while (j := cu.find("<<<", i)) >= 0:
        m = re.search(r"([A-Za-z_]\w*(?:<[\w:]*>)?)\s*$", cu[i:j])
        assert m is not None, f"no kernel name before <<< at offset {j}"
        out.append(cu[i : i + m.start(1)])
        k = cu.index(">>>", j)
        p = q = cu.index("(", k)
        depth = 0
        while True:
            depth += {"(": 1, ")": -1}.get(cu[q], 0)
            if depth == 0:
                break
            q += 1
        out.append(f"launch({m.group(1)}, {cu[j + 3 : k]}, {cu[p + 1 : q]})")
        i = q + 1
    out.append(cu[i:])
    return "".join(out)
