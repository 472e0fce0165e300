#include "common/checkpoint.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <limits>

#include "common/crc32c.h"

namespace tapestry::common {
namespace {

constexpr char kMagic[8] = {'T', 'P', 'C', 'K', 'P', 'T', '0', '1'};

[[noreturn]] void throwSystem(const std::string& what, const std::string& path) {
  int err = errno;
  throw std::runtime_error("checkpoint: " + what + " '" + path + "' failed: " + std::strerror(err));
}

std::string directoryOf(const std::string& path) {
  auto slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string baseNameOf(const std::string& path) {
  auto slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

template <typename T>
void putLe(uint8_t* out, T v) {
  for (size_t i = 0; i < sizeof(T); ++i) out[i] = static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i));
}

template <typename T>
T getLe(const uint8_t* in) {
  uint64_t v = 0;
  for (size_t i = sizeof(T); i-- > 0;) v = (v << 8) | in[i];
  return static_cast<T>(v);
}

// The temp file of one commit: writes everything through a running CRC and
// unlinks itself on destruction unless it was renamed into place.
class TempFile {
 public:
  explicit TempFile(std::string final_path)
      : final_(std::move(final_path)), temp_(final_ + ".tmp." + std::to_string(::getpid())) {
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throwSystem("open", temp_);
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    if (!renamed_) ::unlink(temp_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  void write(const void* data, size_t size) {
    crc_ = crc32c(data, size, crc_);
    writeRaw(data, size);
  }
  template <typename T>
  void writeInt(T v) {
    uint8_t buf[sizeof(T)];
    putLe(buf, v);
    write(buf, sizeof(T));
  }
  void writeCrc() {
    uint8_t buf[4];
    putLe(buf, crc_);
    writeRaw(buf, sizeof(buf));
  }
  void sync() {
    if (::fsync(fd_) != 0) throwSystem("fsync", temp_);
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) throwSystem("close", temp_);
  }
  void rename() {
    if (::rename(temp_.c_str(), final_.c_str()) != 0) throwSystem("rename to '" + final_ + "' of", temp_);
    renamed_ = true;
  }

 private:
  void writeRaw(const void* data, size_t size) {
    auto* p = static_cast<const uint8_t*>(data);
    while (size > 0) {
      ssize_t n = ::write(fd_, p, size);
      if (n < 0) {
        if (errno == EINTR) continue;
        throwSystem("write", temp_);
      }
      p += n;
      size -= static_cast<size_t>(n);
    }
  }

  std::string final_;
  std::string temp_;
  int fd_ = -1;
  bool renamed_ = false;
  uint32_t crc_ = 0;
};

void syncDirectory(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) throwSystem("open directory", dir);
  if (::fsync(fd) != 0) {
    int err = errno;
    ::close(fd);
    errno = err;
    throwSystem("fsync directory", dir);
  }
  ::close(fd);
}

// Reads a checkpoint file front to back; every declared length is checked
// against what is left before anything is allocated for it.
class Reader {
 public:
  Reader(int fd, std::string path, uint64_t size) : fd_(fd), path_(std::move(path)), size_(size) {}

  [[noreturn]] void damaged(const std::string& what) const {
    throw std::runtime_error("checkpoint '" + path_ + "' is damaged: " + what +
                             "; restore it from a backup or delete it to start fresh");
  }
  // Bytes left before the trailing CRC.
  uint64_t remaining() const { return size_ - 4 - offset_; }

  void read(void* dst, size_t n, bool checksummed = true) {
    auto* p = static_cast<uint8_t*>(dst);
    size_t left = n;
    while (left > 0) {
      ssize_t got = ::read(fd_, p, left);
      if (got < 0) {
        if (errno == EINTR) continue;
        throwSystem("read", path_);
      }
      if (got == 0) damaged("file ended early (truncated)");
      p += got;
      left -= static_cast<size_t>(got);
    }
    if (checksummed) crc_ = crc32c(dst, n, crc_);
    offset_ += n;
  }
  template <typename T>
  T readInt(const char* what) {
    if (remaining() < sizeof(T)) damaged(std::string("truncated before ") + what);
    uint8_t buf[sizeof(T)];
    read(buf, sizeof(T));
    return getLe<T>(buf);
  }
  void checkLength(uint64_t length, const std::string& what) const {
    if (length > remaining())
      damaged(what + " declares " + std::to_string(length) + " bytes but only " + std::to_string(remaining()) +
              " remain (truncated or corrupt)");
  }
  void verifyTrailer() {
    if (remaining() != 0) damaged(std::to_string(remaining()) + " unexpected bytes after the last section");
    uint8_t buf[4];
    read(buf, 4, false);
    uint32_t stored = getLe<uint32_t>(buf);
    if (stored != crc_) damaged("checksum mismatch (file contents were altered or partially written)");
  }

 private:
  int fd_;
  std::string path_;
  uint64_t size_;
  uint64_t offset_ = 0;
  uint32_t crc_ = 0;
};

Checkpoint parse(Reader& in, uint64_t size) {
  constexpr uint64_t kMinSize = sizeof(kMagic) + 4 + 4 + 4;
  if (size < kMinSize) in.damaged("only " + std::to_string(size) + " bytes, too short to be a checkpoint (truncated)");
  char magic[sizeof(kMagic)];
  in.read(magic, sizeof(magic));
  if (std::memcmp(magic, kMagic, sizeof(kMagic)) != 0) in.damaged("bad magic, not a Tapestry checkpoint file");

  Checkpoint cp;
  uint32_t metadata_len = in.readInt<uint32_t>("metadata length");
  in.checkLength(metadata_len, "metadata");
  cp.metadata.resize(metadata_len);
  in.read(cp.metadata.data(), metadata_len);

  uint32_t count = in.readInt<uint32_t>("section count");
  // Each section needs at least its two length fields.
  if (count > in.remaining() / 12)
    in.damaged("section count " + std::to_string(count) + " exceeds what the file can hold (truncated or corrupt)");
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t name_len = in.readInt<uint32_t>("section name length");
    in.checkLength(name_len, "section name");
    std::string name(name_len, '\0');
    in.read(name.data(), name_len);
    uint64_t byte_len = in.readInt<uint64_t>("section length");
    in.checkLength(byte_len, "section '" + name + "'");
    std::vector<uint8_t> bytes(static_cast<size_t>(byte_len));
    in.read(bytes.data(), bytes.size());
    if (!cp.sections.emplace(name, std::move(bytes)).second) in.damaged("duplicate section '" + name + "'");
  }
  in.verifyTrailer();
  return cp;
}

}  // namespace

void CheckpointWriter::addSection(std::string name, const void* data, size_t bytes) {
  for (const auto& s : sections_)
    if (s.name == name) throw std::invalid_argument("checkpoint section '" + name + "' added twice");
  if (name.size() > std::numeric_limits<uint32_t>::max())
    throw std::invalid_argument("checkpoint section name is too long");
  if (bytes > 0 && data == nullptr) throw std::invalid_argument("checkpoint section '" + name + "' has no data");
  sections_.push_back({std::move(name), data, bytes});
}

void CheckpointWriter::commit(const std::string& path, const CheckpointFaultHook& hook) const {
  if (metadata_.size() > std::numeric_limits<uint32_t>::max())
    throw std::invalid_argument("checkpoint metadata for '" + path + "' exceeds 4 GiB");
  auto stage = [&](CheckpointStage s) {
    if (hook) hook(s);
  };
  TempFile file(path);
  file.write(kMagic, sizeof(kMagic));
  file.writeInt<uint32_t>(static_cast<uint32_t>(metadata_.size()));
  file.write(metadata_.data(), metadata_.size());
  file.writeInt<uint32_t>(static_cast<uint32_t>(sections_.size()));
  for (const auto& s : sections_) {
    file.writeInt<uint32_t>(static_cast<uint32_t>(s.name.size()));
    file.write(s.name.data(), s.name.size());
    file.writeInt<uint64_t>(s.bytes);
    file.write(s.data, s.bytes);
  }
  file.writeCrc();
  stage(CheckpointStage::kTempWritten);
  file.sync();
  stage(CheckpointStage::kTempSynced);
  file.rename();
  stage(CheckpointStage::kRenamed);
  syncDirectory(directoryOf(path));
}

std::optional<Checkpoint> readCheckpoint(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throwSystem("open", path);
  }
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) throwSystem("fstat", path);
  if (!S_ISREG(st.st_mode)) throw std::runtime_error("checkpoint '" + path + "' is not a regular file");
  Reader reader(fd, path, static_cast<uint64_t>(st.st_size));
  return parse(reader, static_cast<uint64_t>(st.st_size));
}

void removeStaleTemps(const std::string& path) {
  std::string dir = directoryOf(path);
  std::string prefix = baseNameOf(path) + ".tmp.";
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return;
    throwSystem("opendir", dir);
  }
  std::vector<std::string> stale;
  while (dirent* e = ::readdir(d)) {
    std::string name = e->d_name;
    if (name.size() <= prefix.size() || name.compare(0, prefix.size(), prefix) != 0) continue;
    if (name.find_first_not_of("0123456789", prefix.size()) != std::string::npos) continue;
    stale.push_back(dir + "/" + name);
  }
  ::closedir(d);
  for (const auto& f : stale)
    if (::unlink(f.c_str()) != 0 && errno != ENOENT) throwSystem("unlink", f);
}

}  // namespace tapestry::common
