#define PROVMARK_ISA_NS isa_baseline
#include "core/image_kernels_impl.h"
