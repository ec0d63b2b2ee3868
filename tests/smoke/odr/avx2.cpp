#define ODR_UNIT unit_avx2
#include "unit.inc"
