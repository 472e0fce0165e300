#pragma once
// Reference server update, plain functions over arrays: the CPU backend uses
// it directly and the CUDA backend is tested against it.
//   Δ = z − m (pseudo-gradient)
//   plain:    z ← m
//   nesterov: v ← μ·v + Δ;  z ← z − lr·(Δ + μ·v)     (DiLoCo's outer step)
#include <cstddef>

#include "coordinator/aggregation/aggregator.h"

namespace tapestry::coordinator {

// Applies the update for elements [begin, end): mean[i] = sum[i] * inv_weight.
void serverUpdateRange(const ServerOptimizerSettings& settings, const float* sum, double inv_weight, float* consensus,
                       float* momentum, size_t begin, size_t end);

}  // namespace tapestry::coordinator
