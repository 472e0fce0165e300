#pragma once
// A 6x10 bitmap font for printable ASCII (the public-domain X11 misc-fixed
// "6x10"), for labelling plots without a font library.
#include <cstdint>

namespace tapestry::tools {

inline constexpr int kGlyphWidth = 6;
inline constexpr int kGlyphHeight = 10;

// Ten rows, top first; bit 7 of a row is the glyph's leftmost pixel. Characters
// outside ' ' ... '~' get '?'.
const uint8_t* glyphRows(char c);

}  // namespace tapestry::tools
