// etk/etk.hpp: the umbrella header. Includes every module of etk.
#pragma once

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/quant/quant_params.hpp"
#include "etk/quant/uniform.hpp"
#include "etk/quant/requantize.hpp"
#include "etk/quant/int8_gemm.hpp"
#include "etk/quant/observers.hpp"
#include "etk/quant/piecewise_linear.hpp"
#include "etk/quant/two_scaled.hpp"
#include "etk/quant/smooth_quant.hpp"
