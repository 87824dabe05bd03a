// When the CPU loop stores past the caches (non-temporal stores, cpu/vectorized_loop.h).
#pragma once

#include <cstdint>

namespace fused_act::cpu {

struct StreamPolicy {
  // Bytes a launch must move (inputs read + outputs written) before its full-width stores
  // stream; 0: never. Default: the last-level cache's size (Linux sysfs; 0 elsewhere), as a
  // launch that moves more leaves none of its output in cache for the next op anyway.
  // FUSED_ACT_STREAM_BYTES, read once, overrides the default (a value that is not a whole
  // number >= 0 warns and is ignored).
  int64_t min_bytes = 0;
  // Also into pages not yet mapped (default false; the tests force every launch to stream).
  bool fresh_pages = false;
};

StreamPolicy stream_policy();
StreamPolicy set_stream_policy(StreamPolicy p);  // returns the previous one

// Whether an out-of-place launch that moves `moved` bytes streams its `outputs` outputs, each
// `out_bytes` long; counts the launches it lets stream (streamed_launches, for the tests; rows
// that start unaligned, as bias_act's over odd widths can, then still store normally).
bool stream_outputs(int64_t moved, void* const* out, int outputs, int64_t out_bytes);
int64_t streamed_launches();

}  // namespace fused_act::cpu
