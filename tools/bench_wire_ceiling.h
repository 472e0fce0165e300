#pragma once
// Ceilings for `tapestry bench wire`, measured in the same run as the real
// transfer so that the ratios mean something on whatever machine runs them:
// our TLS transport alone (two Connections over loopback, on two threads,
// with nothing of the coordinator or worker around them), plain TCP on
// loopback with no TLS at all, and the disk the
// coordinator checkpoints to.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "common/net/tls.h"

namespace tapestry::tools {

// Seconds for each of `repeats` one-way transfers of `bytes` bytes from
// `data`, as chunk frames of `chunk_bytes`, from a client Connection (the
// `client` identity) to a server Connection (`server`, SAN localhost) that
// drops each chunk once the transport has checked its CRC32C. Throws std::runtime_error.
std::vector<double> tlsTransportSeconds(const common::net::TlsSettings& server, const common::net::TlsSettings& client,
                                        const uint8_t* data, size_t bytes, size_t chunk_bytes, int repeats);

// Seconds for each of `repeats` one-way transfers of `bytes` bytes over a
// plain TCP connection on loopback (no TLS, no framing): a sender thread
// writing 128 KiB at a time and a receiver thread reading into one 4 MiB
// buffer. What the kernel's loopback copies alone allow on this machine.
// Throws std::runtime_error.
std::vector<double> plainTcpSeconds(const uint8_t* data, size_t bytes, int repeats);

// Seconds to write `bytes` to a new file in `dir`, fsync it and remove it:
// what a durable checkpoint of that size costs on this disk.
double fsyncedWriteSeconds(const std::string& dir, const uint8_t* data, size_t bytes);

}  // namespace tapestry::tools
