#pragma once
// A member's own text for `partition text --corpus LANG=PATH`: a UTF-8 file,
// or a directory whose regular files are read in name order. The text is cut
// into entries, the units of the training/held-out split: at lines holding
// only "%" when the text has such lines (the fortune format), else at blank
// lines (paragraphs), else at line ends.
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace tapestry::worker {

// The offset of the first byte that keeps `bytes` from being UTF-8 text (a
// NUL, a malformed or overlong sequence, a surrogate); npos when there is none.
size_t firstNonTextByte(const std::string& bytes);

// Whether `text` holds nothing but whitespace.
bool isBlank(std::string_view text);

// `text` cut into entries as above, each ending in "\n"; blank entries dropped.
std::vector<std::string> splitCorpusEntries(const std::string& text);

// Every entry of the file or directory `path`. Throws std::runtime_error
// naming the path for one that is missing, unreadable or over the text size
// limit, for a file that is not UTF-8 text (with the offset of the first bad
// byte and how to convert it), and for a path without any text.
std::vector<std::string> readCorpusEntries(const std::string& path);

}  // namespace tapestry::worker
