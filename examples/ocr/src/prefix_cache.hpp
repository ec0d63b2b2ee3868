// prefix_cache.hpp: forward passes of models that differ from a base model only in the
// weights of a few layers, on a fixed set of lines, without redoing the unchanged part.
//
// A sensitivity search quantizes one layer at a time: everything before that layer is
// the float model's computation. The base model runs once per line and keeps a
// Checkpoint before the first step of every conv / linear layer; a variant then resumes
// from the checkpoint of its earliest changed layer (Runner::run_from). Its weights are
// set in a working copy of the base model, where only the changed layers are rewritten
// and re-packed (and restored afterwards), so no evaluation rebuilds the whole model.
// The probabilities are bit for bit those of a full run of base.with_weights(fn) when
// fn leaves the unlisted layers alone (tests/test_prefix_cache.cpp).
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include "model.hpp"

namespace ocr {

class PrefixCache {
 public:
  // Runs `base` once on each image ([3, 48, width], kept only during the constructor).
  PrefixCache(const Model& base, const std::vector<const float*>& images, int width);
  ~PrefixCache();

  // Probabilities of every line when `fn` rewrites the listed layers (indices into
  // Model::layers) and the others keep the base weights. Safe to call from several
  // threads at once (each call takes its own working copy of the model).
  std::vector<Probs> forward(const std::vector<int>& layers, const WeightsFn& fn);

  // The base model's probabilities of every line.
  const std::vector<Probs>& base_probs() const { return base_probs_; }
  size_t lines() const { return checkpoints_.size(); }
  size_t checkpoint_bytes() const;

 private:
  struct Worker;
  std::unique_ptr<Worker> acquire();
  void release(std::unique_ptr<Worker> w);

  const Model* base_;
  std::vector<int> steps_;                              // ascending checkpoint steps
  std::vector<std::vector<Checkpoint>> checkpoints_;    // per line, parallel to steps_
  std::vector<Probs> base_probs_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Worker>> idle_;
};

}  // namespace ocr
