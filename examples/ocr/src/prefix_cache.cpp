// prefix_cache.cpp: see prefix_cache.hpp.
#include "prefix_cache.hpp"

#include <algorithm>

namespace ocr {

// A working copy of the base model (changed layers restored after every call) and a
// runner on it.
struct PrefixCache::Worker {
  explicit Worker(const Model& m) : model(m), runner(model) {}
  Model model;
  Runner runner;
};

PrefixCache::PrefixCache(const Model& base, const std::vector<const float*>& images, int width) : base_(&base) {
  for (size_t l = 0; l < base.layers.size(); ++l) steps_.push_back(base.first_step_of(int(l)));
  std::sort(steps_.begin(), steps_.end());
  steps_.erase(std::unique(steps_.begin(), steps_.end()), steps_.end());
  Runner r(base);
  checkpoints_.resize(images.size());
  base_probs_.resize(images.size());
  for (size_t i = 0; i < images.size(); ++i) r.run(images[i], width, Hooks{}, base_probs_[i], steps_, checkpoints_[i]);
}

PrefixCache::~PrefixCache() = default;

size_t PrefixCache::checkpoint_bytes() const {
  size_t n = 0;
  for (const auto& line : checkpoints_)
    for (const auto& c : line) n += c.bytes();
  return n;
}

std::unique_ptr<PrefixCache::Worker> PrefixCache::acquire() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (!idle_.empty()) {
      auto w = std::move(idle_.back());
      idle_.pop_back();
      return w;
    }
  }
  return std::make_unique<Worker>(*base_);
}

void PrefixCache::release(std::unique_ptr<Worker> w) {
  std::lock_guard<std::mutex> lock(mutex_);
  idle_.push_back(std::move(w));
}

std::vector<Probs> PrefixCache::forward(const std::vector<int>& listed, const WeightsFn& fn) {
  std::vector<int> layers = listed;
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  if (layers.empty()) return base_probs_;
  int first = int(base_->steps.size());
  for (int l : layers) first = std::min(first, base_->first_step_of(l));  // range-checks l
  const size_t cp = size_t(std::lower_bound(steps_.begin(), steps_.end(), first) - steps_.begin());
  auto w = acquire();
  // Put the listed layers back to the base weights whatever happens, so the working copy
  // is the base model again when it returns to the pool.
  struct Restore {
    PrefixCache& self;
    std::unique_ptr<Worker>& w;
    const std::vector<int>& layers;
    ~Restore() {
      for (int l : layers) w->model.layers[size_t(l)] = self.base_->layers[size_t(l)];
      self.release(std::move(w));
    }
  } restore{*this, w, layers};
  for (int l : layers) w->model.layers[size_t(l)].rewrite(fn);
  std::vector<Probs> out(checkpoints_.size());
  for (size_t i = 0; i < checkpoints_.size(); ++i) w->runner.run_from(checkpoints_[i][cp], Hooks{}, out[i]);
  return out;
}

}  // namespace ocr
