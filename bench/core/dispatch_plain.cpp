// Plain -O2: etk dispatches at run time.
#define DISPATCH_UNIT_FN plain_unit
#include "core/dispatch_unit.inc"
