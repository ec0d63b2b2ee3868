#define ODR_UNIT unit_plain
#include "unit.inc"
