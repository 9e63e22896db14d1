#define PROVMARK_ISA_NS isa_baseline
#include "core/keystream_impl.h"
