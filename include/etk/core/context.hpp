// etk/core/context.hpp: caller-owned execution. The one way every etk kernel that threads
// or needs scratch memory gets its threads and its memory.
//
// An engine owns its threads and its memory; etk never creates a thread or keeps a hidden
// buffer inside a kernel call. A kernel takes a `const Context&`:
//  * `pool`: the caller's thread pool, behind the small `ThreadPool` interface (one virtual
//    call per parallel region, the task function type-erased as a plain function pointer
//    and a state pointer, so no std::function allocation). Null runs on the caller's
//    thread. etk ships `SequentialPool` and `SimpleThreadPool` (threads created once, in
//    its constructor) for callers without a pool of their own.
//  * `scratch`: a caller-owned arena. A kernel reports its scratch size before the call
//    (`*_scratch_bytes`, plan then run); an arena reserved to that size is never
//    reallocated by the call. Null: the kernel allocates its scratch per call.
// Kernels split work into tasks whose number and boundaries do not depend on the pool's
// concurrency, and each task writes its own part of the output, so a result is
// bit-identical for every thread count.
//
// These types are outside the ISA namespace: a Context made in a translation unit built
// without ISA flags is the same type in one built with -mavx512f.
//
// A Context with an arena serves one kernel call at a time (the arena is the call's
// scratch); give concurrent callers their own arenas.
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <new>
#include <system_error>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "etk/config.hpp"

namespace etk {

// The caller's thread pool. parallel_for(n, fn, state) calls fn(state, task, worker) once
// for every task in [0, n) and returns when all have returned. `worker` identifies the
// thread running the task, in [0, concurrency()); two tasks running at the same time
// never share a worker index (kernels index per-worker scratch with it). Tasks must not
// throw; etk's never do once arguments are checked.
class ThreadPool {
 public:
  using TaskFn = void (*)(void* state, std::ptrdiff_t task, int worker);
  virtual ~ThreadPool() = default;
  virtual int concurrency() const = 0;
  virtual void parallel_for(std::ptrdiff_t n_tasks, TaskFn fn, void* state) = 0;
};

// Runs every task on the calling thread, in order.
class SequentialPool final : public ThreadPool {
 public:
  int concurrency() const override { return 1; }
  void parallel_for(std::ptrdiff_t n_tasks, TaskFn fn, void* state) override {
    for (std::ptrdiff_t t = 0; t < n_tasks; ++t) fn(state, t, 0);
  }
};

// A small fixed pool: `threads - 1` workers created once in the constructor, plus the
// calling thread as worker 0. Tasks are claimed from a shared counter. One parallel_for
// at a time (calls from several threads are serialised).
class SimpleThreadPool final : public ThreadPool {
 public:
  explicit SimpleThreadPool(int threads) {
    ETK_CHECK(threads >= 1 && threads <= 1024,
              "argument 'threads' must be in [1, 1024], got " << threads);
    workers_.reserve(static_cast<std::size_t>(threads - 1));
#if defined(ETK_EXCEPTIONS)
    try {
#endif
      for (int w = 1; w < threads; ++w) workers_.emplace_back([this, w] { worker_loop(w); });
#if defined(ETK_EXCEPTIONS)
    } catch (const std::system_error& e) {
      stop_workers();
      ETK_THROW("could not create worker thread " << workers_.size() + 1 << " of " << threads
                                                  << ": " << e.what());
    }
#endif
  }
  SimpleThreadPool(const SimpleThreadPool&) = delete;
  SimpleThreadPool& operator=(const SimpleThreadPool&) = delete;
  ~SimpleThreadPool() override { stop_workers(); }

  int concurrency() const override { return static_cast<int>(workers_.size()) + 1; }

  void parallel_for(std::ptrdiff_t n_tasks, TaskFn fn, void* state) override {
    if (n_tasks <= 0) return;
    std::lock_guard<std::mutex> one_region(region_mutex_);
    if (workers_.empty() || n_tasks == 1) {
      for (std::ptrdiff_t t = 0; t < n_tasks; ++t) fn(state, t, 0);
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fn_ = fn;
      state_ = state;
      n_tasks_ = n_tasks;
      next_.store(0, std::memory_order_relaxed);
      busy_ = static_cast<int>(workers_.size());
      ++generation_;
    }
    wake_.notify_all();
    run_tasks(0);
    std::unique_lock<std::mutex> lock(mutex_);
    done_.wait(lock, [this] { return busy_ == 0; });
  }

 private:
  void run_tasks(int worker) {
    for (;;) {
      const std::ptrdiff_t t = next_.fetch_add(1, std::memory_order_relaxed);
      if (t >= n_tasks_) return;
      fn_(state_, t, worker);
    }
  }
  void worker_loop(int worker) {
    std::uint64_t seen = 0;
    for (;;) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
      }
      run_tasks(worker);
      std::lock_guard<std::mutex> lock(mutex_);
      if (--busy_ == 0) done_.notify_one();
    }
  }
  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
    }
    wake_.notify_all();
    for (auto& t : workers_) t.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::mutex region_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_, done_;
  TaskFn fn_ = nullptr;
  void* state_ = nullptr;
  std::ptrdiff_t n_tasks_ = 0;
  std::atomic<std::ptrdiff_t> next_{0};
  int busy_ = 0;
  std::uint64_t generation_ = 0;
  bool stop_ = false;
};

// Caller-owned scratch memory, 64-byte aligned. reserve() grows it (never shrinks);
// a kernel given an arena at least its *_scratch_bytes large does not allocate.
class ScratchArena {
 public:
  static constexpr std::size_t kAlignment = 64;
  ScratchArena() = default;
  explicit ScratchArena(std::size_t bytes) { reserve(bytes); }
  ScratchArena(const ScratchArena&) = delete;
  ScratchArena& operator=(const ScratchArena&) = delete;
  ~ScratchArena() { release(); }

  void reserve(std::size_t bytes) {
    if (bytes <= capacity_) return;
    ETK_CHECK(bytes <= kMaxBytes, "scratch of " << bytes << " bytes exceeds the arena's limit of "
                                                << kMaxBytes << " bytes");
    const std::size_t rounded = (bytes + kAlignment - 1) / kAlignment * kAlignment;
    void* p = ::operator new(rounded, std::align_val_t(kAlignment), std::nothrow);
    ETK_CHECK(p != nullptr, "could not allocate " << rounded << " bytes of scratch");
    release();
    data_ = p;
    capacity_ = rounded;
  }
  std::size_t capacity() const { return capacity_; }
  void* data() const { return data_; }

 private:
  static constexpr std::size_t kMaxBytes = std::size_t(1) << 40;
  void release() {
    if (data_) ::operator delete(data_, std::align_val_t(kAlignment));
    data_ = nullptr;
    capacity_ = 0;
  }
  void* data_ = nullptr;
  std::size_t capacity_ = 0;
};

// What a kernel call runs on. The default (no pool, no arena) is one thread with scratch
// allocated per call.
struct Context {
  ThreadPool* pool = nullptr;
  ScratchArena* scratch = nullptr;
  int concurrency() const { return pool ? std::max(1, pool->concurrency()) : 1; }
};

// f(task, worker) for every task in [0, n_tasks), on ctx's pool (the caller's thread
// when it has none).
template <typename F>
void parallel_for(const Context& ctx, std::ptrdiff_t n_tasks, F&& f) {
  if (n_tasks <= 0) return;
  using Fn = std::remove_reference_t<F>;
  if (!ctx.pool || n_tasks == 1) {
    for (std::ptrdiff_t t = 0; t < n_tasks; ++t) f(t, 0);
    return;
  }
  ctx.pool->parallel_for(
      n_tasks,
      [](void* state, std::ptrdiff_t task, int worker) { (*static_cast<Fn*>(state))(task, worker); },
      const_cast<void*>(static_cast<const void*>(&f)));
}

// The scratch of one kernel call: the arena's memory when ctx has an arena (grown to
// `bytes` if it is smaller), otherwise a buffer owned by this lease for the call.
class ScratchLease {
 public:
  ScratchLease(const Context& ctx, std::size_t bytes) {
    if (ctx.scratch) {
      ctx.scratch->reserve(bytes);
      data_ = ctx.scratch->data();
    } else if (bytes > 0) {
      own_.reserve(bytes);
      data_ = own_.data();
    }
  }
  template <typename T = void>
  T* data() const { return static_cast<T*>(data_); }

 private:
  ScratchArena own_;
  void* data_ = nullptr;
};

}  // namespace etk
