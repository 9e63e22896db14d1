// A small persistent worker pool for the core's data-parallel loops. One parallel region runs at a time
// (callers from several Python threads queue up); a parallel_for called from inside a worker runs inline,
// so nesting cannot deadlock. The first exception thrown by a chunk is rethrown to the caller.
#pragma once

#include <cstddef>
#include <functional>

namespace provmark {

// Threads used by parallel_for (>= 1). Default: PROVMARK_NUM_THREADS if set, else hardware concurrency.
int num_threads();
// Set the thread count (1 = run everything on the calling thread). Throws InvalidArgument if n < 1.
void set_num_threads(int n);

// Split [0, n) into contiguous chunks of at least `grain` items and call body(begin, end) on the pool.
void parallel_for(std::size_t n, std::size_t grain, const std::function<void(std::size_t, std::size_t)>& body);

inline void parallel_for(std::size_t n, const std::function<void(std::size_t, std::size_t)>& body) {
  parallel_for(n, 1, body);
}

}  // namespace provmark
