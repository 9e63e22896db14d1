#define PROVMARK_ISA_NS isa_avx2
#include "core/keystream_impl.h"
