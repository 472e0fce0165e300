#pragma once
// TAPESTRY_VECTOR_CLONES marks a hot loop function so that GCC emits AVX-512
// (x86-64-v4: F, BW, DQ, VL, so 8- and 16-bit loops get 64-byte vectors too),
// AVX2 and baseline builds of it and picks one at load time (ifunc). The
// loops themselves are plain C++ written so that the compiler vectorises
// them; anywhere target_clones is unsupported the marker is empty.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(__CUDACC__) && \
    defined(__has_attribute)
#if __has_attribute(target_clones)
#define TAPESTRY_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#endif
#endif
#ifndef TAPESTRY_VECTOR_CLONES
#define TAPESTRY_VECTOR_CLONES
#endif
