// attention.hpp: the float attention of the transformer blocks, with the probabilities
// kept (token pruning and the on_probs hook read them): etk::dense_attention_with_probs,
// or, when a technique replaces the softmax's exp, the same steps with the hook inside.
#pragma once

#include "hooks.hpp"

namespace ocr {

// O = softmax(Q K^T * scale) V per head; probs [heads, T, T] receives the probabilities.
// exp_hook, when set, replaces the exp of the softmax.
void attention_with_probs(const AttentionCall& c, float* probs, const NonlinearityFn* exp_hook);

}  // namespace ocr
