// etk/etk.hpp: the umbrella header. Includes every module of etk.
#pragma once

#include "etk/config.hpp"
#include "etk/core/checks.hpp"
#include "etk/core/tensor_view.hpp"
#include "etk/lut/functions.hpp"
#include "etk/lut/fixed_point.hpp"
#include "etk/lut/pwl.hpp"
#include "etk/lut/integer_pwl.hpp"
#include "etk/lut/fit.hpp"
#include "etk/lut/gqa_search.hpp"
#include "etk/lut/table_set.hpp"
#include "etk/lut/table_io.hpp"
#include "etk/lut/tables.hpp"
#include "etk/lut/integer_ops.hpp"
