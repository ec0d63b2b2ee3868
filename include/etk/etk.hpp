// etk/etk.hpp: the umbrella header. Includes every module of etk.
#pragma once

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/quant/quant_params.hpp"
#include "etk/quant/uniform.hpp"
#include "etk/pruning/token_importance.hpp"
#include "etk/pruning/ltp.hpp"
#include "etk/pruning/compact.hpp"
#include "etk/pruning/adaptive.hpp"
#include "etk/pruning/token_merging.hpp"
