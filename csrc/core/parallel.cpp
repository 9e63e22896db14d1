#include "core/parallel.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/common.h"

namespace provmark {
namespace {

thread_local bool tl_inside_pool = false;

int default_threads() {
  if (const char* env = std::getenv("PROVMARK_NUM_THREADS")) {
    const int n = std::atoi(env);
    if (n >= 1) return n;
  }
  const unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

class Pool {
 public:
  static Pool& instance() {
    static Pool* pool = new Pool();  // leaked on purpose: workers may outlive static destruction order
    return *pool;
  }

  int threads() const { return threads_.load(); }

  void set_threads(int n) {
    if (n < 1) throw InvalidArgument("set_num_threads: n must be >= 1, got " + std::to_string(n));
    threads_.store(n);
  }

  void run(std::size_t n, std::size_t grain, const std::function<void(std::size_t, std::size_t)>& body) {
    if (n == 0) return;
    grain = std::max<std::size_t>(grain, 1);
    const std::size_t max_chunks = (n + grain - 1) / grain;
    const int want = static_cast<int>(std::min<std::size_t>(threads_.load(), max_chunks));
    if (want <= 1 || tl_inside_pool) {
      body(0, n);
      return;
    }
    std::lock_guard<std::mutex> region(region_mutex_);
    ensure_workers(want - 1);
    // A few chunks per participant balance uneven work without much scheduling overhead.
    const std::size_t nchunks = std::min<std::size_t>(max_chunks, static_cast<std::size_t>(want) * 4);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      body_ = &body;
      n_ = n;
      nchunks_ = nchunks;
      next_chunk_.store(0);
      participants_ = want - 1;
      finished_ = 0;
      error_ = nullptr;
      ++generation_;
    }
    wake_.notify_all();
    tl_inside_pool = true;
    work();
    tl_inside_pool = false;
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [&] { return finished_ == participants_; });
    body_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  Pool() : threads_(default_threads()) {}

  void ensure_workers(int count) {
    while (static_cast<int>(workers_.size()) < count) {
      const int index = static_cast<int>(workers_.size());
      workers_.emplace_back([this, index] { worker_loop(index); });
      workers_.back().detach();
    }
  }

  void work() {
    for (;;) {
      const std::size_t c = next_chunk_.fetch_add(1);
      if (c >= nchunks_) return;
      const std::size_t begin = n_ * c / nchunks_;
      const std::size_t end = n_ * (c + 1) / nchunks_;
      try {
        (*body_)(begin, end);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
        next_chunk_.store(nchunks_);  // stop handing out work
      }
    }
  }

  void worker_loop(int index) {
    tl_inside_pool = true;
    uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_ != seen; });
        seen = generation_;
        if (index >= participants_) continue;  // not needed for this region
      }
      work();
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ++finished_;
      }
      done_.notify_all();
    }
  }

  std::atomic<int> threads_;
  std::vector<std::thread> workers_;
  std::mutex region_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const std::function<void(std::size_t, std::size_t)>* body_ = nullptr;
  std::size_t n_ = 0;
  std::size_t nchunks_ = 0;
  std::atomic<std::size_t> next_chunk_{0};
  int participants_ = 0;
  int finished_ = 0;
  uint64_t generation_ = 0;
  std::exception_ptr error_;
};

}  // namespace

int num_threads() { return Pool::instance().threads(); }
void set_num_threads(int n) { Pool::instance().set_threads(n); }

void parallel_for(std::size_t n, std::size_t grain, const std::function<void(std::size_t, std::size_t)>& body) {
  Pool::instance().run(n, grain, body);
}

}  // namespace provmark
