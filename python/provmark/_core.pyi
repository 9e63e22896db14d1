# Type stubs for the native module provmark._core (hand-kept; tests/test_stubs.py checks them for drift).
from enum import IntEnum

import numpy as np
import numpy.typing as npt

__version__: str

class CudaError(RuntimeError): ...

# -- backend -------------------------------------------------------------------------------------------------
def built_with_cuda() -> bool: ...
def cuda_device_count() -> tuple[int, str | None]: ...
def simd_level() -> str: ...
def simd_level_supported() -> str: ...
def set_simd_level(level: str) -> None: ...
def num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...

# -- keyed randomness ----------------------------------------------------------------------------------------
class Stream(IntEnum):
    TEST = 0
    IMAGE_SYNC = 1
    IMAGE_PAYLOAD = 2
    IMAGE_PERMUTE = 3
    AUDIO_BINS = 16
    AUDIO_SYNC = 17
    AUDIO_PAYLOAD = 18
    AUDIO_PERMUTE = 19
    LABEL_PAYLOAD = 32

def random_words(
    key: bytes, stream: Stream, n: int, offset: int = 0, device: str = "cpu"
) -> npt.NDArray[np.uint32]: ...
def random_uniform(
    key: bytes, stream: Stream, n: int, offset: int = 0, device: str = "cpu"
) -> npt.NDArray[np.float32]: ...
def random_signs(key: bytes, stream: Stream, n: int, offset: int = 0, device: str = "cpu") -> npt.NDArray[np.int8]: ...
def random_normal(
    key: bytes, stream: Stream, n: int, offset: int = 0, device: str = "cpu"
) -> npt.NDArray[np.float32]: ...
def random_permutation(key: bytes, stream: Stream, n: int) -> npt.NDArray[np.int32]: ...

# -- payload coding ------------------------------------------------------------------------------------------
def ecc_coded_length(payload_bits: int) -> int: ...
def ecc_encode(payload: bytes) -> npt.NDArray[np.uint8]: ...
def ecc_decode(soft: npt.NDArray[np.float32], payload_bits: int) -> tuple[bytes | None, float]: ...
def ecc_decode_list(
    soft: npt.NDArray[np.float32], payload_bits: int, list_size: int
) -> tuple[bytes | None, float, int, int]: ...

# -- audio engine (csrc/core/audio_*; internal, driven by provmark.audio) ------------------------------------
def audio_kernel_isa() -> str: ...
def audio_fft(x: npt.NDArray[np.complex128]) -> npt.NDArray[np.complex128]: ...

class AudioEmbedCore:
    def __init__(
        self,
        channels: int,
        hop: int,
        cell_hops: int,
        edges: npt.NDArray[np.int32],
        chips: npt.NDArray[np.float64],
        dither: npt.NDArray[np.float64],
        bits: npt.NDArray[np.int8],
        ng: int,
        step: float,
        gamma: float,
        cap: float,
        alpha: float,
        snr_db: float,
        local_snr_db: float,
        leak: float,
        floor: float,
    ) -> None: ...
    def run(
        self,
        x: npt.NDArray[np.float64] | npt.NDArray[np.float32] | npt.NDArray[np.int16],
        ncells: int,
        out: npt.NDArray[np.generic] | None = None,
        clip: bool = False,
    ) -> npt.NDArray[np.generic]: ...
    @property
    def bucket(self) -> float: ...
    @property
    def t_next(self) -> int: ...
    @property
    def acc(self) -> npt.NDArray[np.float64]: ...

def audio_analysis(x: npt.NDArray[np.float64], hop: int, top: int) -> npt.NDArray[np.float64]: ...
def audio_projections(
    cs: npt.NDArray[np.float64],
    edges: npt.NDArray[np.int32],
    chips: npt.NDArray[np.float64],
    ng: int,
    cell_hops: int,
    log_floor: float,
    speed: float,
    w0: float,
    w1: float,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...
def audio_fold(
    p: npt.NDArray[np.float64],
    w: npt.NDArray[np.float64],
    dither: npt.NDArray[np.float64],
    sign: npt.NDArray[np.float64],
    step: float,
    cell_hops: int,
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]: ...

# -- image engine (csrc/core/image_*) ------------------------------------------------------------------------
def image_luma(image: npt.NDArray[np.generic], batch: bool = False) -> npt.NDArray[np.float32]: ...
def image_mask(y: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]: ...
def image_resample(y: npt.NDArray[np.float32], out_h: int, out_w: int) -> npt.NDArray[np.float32]: ...
def image_whiten(
    y: npt.NDArray[np.float32], chip: float, den: npt.NDArray[np.float32] | None = None
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]: ...
def image_fold(w: npt.NDArray[np.float32], period: float, theta: float, side: int = 128) -> npt.NDArray[np.float64]: ...
def image_embed_apply(
    image: npt.NDArray[np.generic],
    mask: npt.NDArray[np.float32],
    tiles: npt.NDArray[np.float32],
    chip: float,
    target_rms: float,
) -> npt.NDArray[np.generic]: ...
def image_embed_analyse(
    image: npt.NDArray[np.generic], work_h: int = 0, work_w: int = 0
) -> tuple[npt.NDArray[np.uint16], npt.NDArray[np.float32] | None, npt.NDArray[np.float32] | None]: ...
def image_luma_work(image: npt.NDArray[np.generic], work_h: int, work_w: int) -> npt.NDArray[np.float32]: ...
def image_embed_fused(
    image: npt.NDArray[np.generic],
    mask_q: npt.NDArray[np.uint16],
    tile: npt.NDArray[np.float32],
    chip: float,
    target_rms: float,
    flat_rms: float = 0.0,
) -> npt.NDArray[np.generic]: ...
def image_pattern(
    tile: npt.NDArray[np.float32], height: int, width: int, chip: float, mask: npt.NDArray[np.float32] | None = None
) -> tuple[npt.NDArray[np.float32], float]: ...
def image_flatten_spectrum(p: npt.NDArray[np.float32], sigma_y: float, sigma_x: float) -> npt.NDArray[np.float32]: ...
def image_lattice_scores(
    a: npt.NDArray[np.float32], periods: npt.NDArray[np.float64], thetas: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]: ...

# -- CUDA image kernels (csrc/cuda/image_cuda.h; internal, used by provmark.gpu) --------------------------------
# Device memory crosses as integer pointers, CUDA streams as integer cudaStream_t handles.
class CudaFrameView:
    def __init__(
        self,
        ptr: int,
        dtype: str,
        n: int,
        height: int,
        width: int,
        channels: int,
        stride_n: int,
        stride_y: int,
        stride_x: int,
        stride_c: int,
        scale: float,
        shift: int = 0,
        vmax: float = 0.0,
        lo: float = 0.0,
    ) -> None: ...
    @property
    def ptr(self) -> int: ...
    @property
    def dtype(self) -> str: ...
    @property
    def lo(self) -> float: ...
    @property
    def shape(self) -> tuple[int, int, int, int]: ...
    @property
    def strides(self) -> tuple[int, int, int, int]: ...

def cuda_pointer_device(ptr: int) -> int: ...
def cuda_image_luma(frames: CudaFrameView, out: int, stream: int = 0) -> None: ...
def cuda_image_mask(frames: CudaFrameView, out: int, stream: int = 0) -> None: ...
def cuda_image_resample(frames: CudaFrameView, out: int, out_h: int, out_w: int, stream: int = 0) -> None: ...
def cuda_image_blur(src: int, n: int, height: int, width: int, sigma: float, out: int, stream: int = 0) -> None: ...
def cuda_image_whiten(
    y: int, n: int, height: int, width: int, chip: float, out: int, den_in: int = 0, den_out: int = 0, stream: int = 0
) -> None: ...
def cuda_image_fold(
    w: int, n: int, height: int, width: int, period: float, theta: float, out: int, side: int = 128, stream: int = 0
) -> None: ...
def cuda_image_fold_many(
    planes: npt.NDArray[np.uint64],
    periods: npt.NDArray[np.float64],
    thetas: npt.NDArray[np.float64],
    height: int,
    width: int,
    out: int,
    side: int = 128,
    stream: int = 0,
) -> None: ...
def cuda_image_reliability(
    w: int, den: int, n: int, height: int, width: int, floor: float, out: int, stream: int = 0
) -> None: ...
def cuda_image_sync(tiles: int, n: int, spectra: int, out: int, stream: int = 0) -> None: ...
def cuda_image_lattice_scores(
    w: int,
    height: int,
    width: int,
    fft_h: int,
    fft_w: int,
    sigma_y: float,
    sigma_x: float,
    notch_rows: npt.NDArray[np.uint8],
    notch_cols: npt.NDArray[np.uint8],
    periods: npt.NDArray[np.float64],
    thetas: npt.NDArray[np.float64],
    stream: int = 0,
) -> npt.NDArray[np.float64]: ...
def cuda_sum_planes(src: int, n: int, plane: int, out: int, stream: int = 0) -> None: ...
def cuda_image_embed(
    frames: CudaFrameView,
    out: CudaFrameView,
    tiles: npt.NDArray[np.float32],
    chip: float,
    target_rms: float,
    stream: int = 0,
    flat_rms: float = 0.0,
) -> None: ...
def cuda_copy_to_device(dst: int, src: npt.NDArray[np.generic], stream: int = 0) -> None: ...
def cuda_copy_to_host(src: int, dst: npt.NDArray[np.generic], stream: int = 0) -> None: ...
def cuda_audio_analysis(
    x: int,
    dtype: str,
    batch: int,
    channels: int,
    nsamples: int,
    stride_b: int,
    stride_c: int,
    stride_t: int,
    hop: int,
    top: int,
    cs: int,
    stream: int = 0,
) -> None: ...
def cuda_audio_projections(
    cs: int,
    batch: int,
    nfr: int,
    top: int,
    edges: npt.NDArray[np.int32],
    chips: npt.NDArray[np.float64],
    ng: int,
    cell_hops: int,
    log_floor: float,
    speeds: npt.NDArray[np.float64],
    w0: float,
    w1: float,
    rows: int,
    p: int,
    w: int,
    stream: int = 0,
    per_clip: bool = False,
) -> None: ...
def cuda_audio_embed(
    x: int,
    dtype: str,
    batch: int,
    channels: int,
    nsamples: int,
    stride_b: int,
    stride_c: int,
    stride_t: int,
    out: int,
    out_dtype: str,
    out_stride_b: int,
    out_stride_c: int,
    out_stride_t: int,
    hop: int,
    cell_hops: int,
    edges: npt.NDArray[np.int32],
    chips: npt.NDArray[np.float64],
    dither: npt.NDArray[np.float64],
    bits: npt.NDArray[np.int8],
    ng: int,
    step: float,
    gamma: float,
    cap: float,
    alpha: float,
    snr_db: float,
    local_snr_db: float,
    leak: float,
    floor: float,
    stream: int = 0,
    t0: int = 0,
    bucket: int = 0,
    acc: int = 0,
    whole_cells: bool = False,
) -> None: ...
def cuda_audio_copy(
    x: int,
    dtype: str,
    batch: int,
    channels: int,
    nsamples: int,
    stride_b: int,
    stride_c: int,
    stride_t: int,
    out: int,
    out_dtype: str,
    out_stride_b: int,
    out_stride_c: int,
    out_stride_t: int,
    stream: int = 0,
) -> None: ...
def cuda_audio_fold(
    p: int,
    w: int,
    count: int,
    rows: int,
    nj: npt.NDArray[np.int64],
    ng: int,
    dither: npt.NDArray[np.float64],
    sign: npt.NDArray[np.float64],
    step: float,
    cell_hops: int,
    fc: int,
    fs: int,
    z: int,
    stream: int = 0,
) -> None: ...
