// -O2 -march=native: direct calls to the path of the flags.
#define DISPATCH_UNIT_FN native_unit
#include "core/dispatch_unit.inc"
