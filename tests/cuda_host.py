"""Running CUDA kernel source on host threads (tests only): a host emulation of the CUDA runtime pieces the
kernels use (``RUNTIME_SHIM``, written as ``cuda_runtime.h``) and the rewrite of kernel launches into calls of it;
used by tests/test_cuda_math.py (image_cuda.cu) and tests/test_cuda_audio.py (audio_cuda.cu)."""

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


RUNTIME_SHIM = r"""// Host emulation of the CUDA runtime pieces image_cuda.cu and audio_cuda.cu use: blocks run one
// after another, each with blockDim real threads and a barrier for __syncthreads; __shared__ variables are
// statics (one block at a time), dynamic shared memory a static buffer; atomics are std::atomic_ref; device
// memory is host memory.
#pragma once
#include <atomic>
#include <barrier>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
struct dim3 {
  unsigned x = 1, y = 1, z = 1;
  dim3(unsigned a = 1, unsigned b = 1, unsigned c = 1) : x(a), y(b), z(c) {}
};
inline thread_local dim3 threadIdx, blockIdx;
inline dim3 blockDim, gridDim;
inline std::barrier<>* g_bar = nullptr;
inline void __syncthreads() { g_bar->arrive_and_wait(); }
inline double atomicAdd(double* a, double v) { return std::atomic_ref<double>(*a).fetch_add(v); }
inline unsigned atomicAdd(unsigned* a, unsigned v) { return std::atomic_ref<unsigned>(*a).fetch_add(v); }
alignas(64) inline double g_dyn_shared[1 << 14];
typedef int cudaError_t;
constexpr cudaError_t cudaSuccess = 0;
struct CUstream_st;
typedef CUstream_st* cudaStream_t;
enum cudaMemcpyKind { cudaMemcpyHostToDevice, cudaMemcpyDeviceToHost, cudaMemcpyDeviceToDevice };
enum cudaMemoryType { cudaMemoryTypeHost, cudaMemoryTypeDevice, cudaMemoryTypeManaged };
struct cudaPointerAttributes { cudaMemoryType type; int device; };
inline cudaError_t cudaPointerGetAttributes(cudaPointerAttributes* a, const void*) {
  a->type = cudaMemoryTypeDevice; a->device = 0; return 0; }
inline cudaError_t cudaMalloc(void** p, std::size_t n) { *p = std::calloc(n, 1); return 0; }
inline cudaError_t cudaFree(void* p) { std::free(p); return 0; }
inline cudaError_t cudaMallocAsync(void** p, std::size_t n, cudaStream_t) { *p = std::calloc(n, 1); return 0; }
inline cudaError_t cudaFreeAsync(void* p, cudaStream_t) { std::free(p); return 0; }
inline cudaError_t cudaMemcpyAsync(void* d, const void* s, std::size_t n, cudaMemcpyKind, cudaStream_t) {
  std::memcpy(d, s, n); return 0; }
inline cudaError_t cudaMemsetAsync(void* d, int v, std::size_t n, cudaStream_t) { std::memset(d, v, n); return 0; }
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return 0; }
inline cudaError_t cudaGetDevice(int* d) { *d = 0; return 0; }
inline cudaError_t cudaSetDevice(int) { return 0; }
inline cudaError_t cudaGetLastError() { return 0; }
inline const char* cudaGetErrorString(cudaError_t) { return "emulated"; }
template <class... P, class... A>
void launch(void (*k)(P...), dim3 grid, dim3 block, std::size_t shmem, cudaStream_t, A... args) {
  if (shmem > sizeof(g_dyn_shared)) std::abort();
  blockDim = block;
  gridDim = grid;
  const unsigned nt = block.x * block.y * block.z;
  std::barrier<> bar(nt);
  g_bar = &bar;
  std::vector<std::thread> th;
  for (unsigned t = 0; t < nt; ++t)
    th.emplace_back([&, t] {
      threadIdx = dim3(t % block.x, (t / block.x) % block.y, t / (block.x * block.y));
      for (unsigned bz = 0; bz < grid.z; ++bz)
        for (unsigned by = 0; by < grid.y; ++by)
          for (unsigned bx = 0; bx < grid.x; ++bx) {
            blockIdx = dim3(bx, by, bz);
            k(args...);
            bar.arrive_and_wait();  // the block is done before the next one reuses the statics
          }
    });
  for (auto& x : th) x.join();
}
"""
