#pragma once
// Durable state files. A checkpoint is a small JSON metadata string plus named
// binary sections, closed by a CRC32C over everything before it. Writes are
// atomic: temp file in the same directory, fsync, rename, fsync of the
// directory; a crash at any moment leaves either the old or the new file.
//
// File layout (little-endian):
//   "TPCKPT01" | u32 metadata_len | metadata | u32 section_count |
//   { u32 name_len | name | u64 byte_len | bytes }* | u32 crc32c(all before)
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace tapestry::common {

// Points at which a test may inject a crash (deterministic failure injection).
enum class CheckpointStage { kTempWritten, kTempSynced, kRenamed };
using CheckpointFaultHook = std::function<void(CheckpointStage)>;

class CheckpointWriter {
 public:
  void setMetadata(std::string json) { metadata_ = std::move(json); }
  // The data is referenced, not copied: it must stay alive until commit().
  void addSection(std::string name, const void* data, size_t bytes);
  // Writes atomically to `path`. Throws std::runtime_error naming the path and
  // the failing system call on any I/O error; the old file is then intact.
  void commit(const std::string& path, const CheckpointFaultHook& hook = {}) const;

 private:
  struct Section {
    std::string name;
    const void* data;
    size_t bytes;
  };
  std::string metadata_;
  std::vector<Section> sections_;
};

struct Checkpoint {
  std::string metadata;
  std::map<std::string, std::vector<uint8_t>> sections;

  // Section as a typed vector; throws std::runtime_error if missing or its
  // size is not a multiple of sizeof(T).
  template <typename T>
  std::vector<T> sectionAs(const std::string& name) const;
};

// Reads and verifies a checkpoint. Returns nullopt if `path` does not exist.
// Throws std::runtime_error (naming the path and what is wrong: truncated,
// bad magic, checksum mismatch) if the file exists but is damaged.
std::optional<Checkpoint> readCheckpoint(const std::string& path);

// Removes leftover temp files of interrupted writes next to `path`.
void removeStaleTemps(const std::string& path);

template <typename T>
std::vector<T> Checkpoint::sectionAs(const std::string& name) const {
  auto it = sections.find(name);
  if (it == sections.end()) throw std::runtime_error("checkpoint has no section '" + name + "'");
  if (it->second.size() % sizeof(T) != 0)
    throw std::runtime_error("checkpoint section '" + name + "' has a size that is not a whole number of elements");
  std::vector<T> out(it->second.size() / sizeof(T));
  if (!out.empty()) std::memcpy(out.data(), it->second.data(), it->second.size());
  return out;
}

}  // namespace tapestry::common
