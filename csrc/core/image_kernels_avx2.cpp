#define PROVMARK_ISA_NS isa_avx2
#include "core/image_kernels_impl.h"
