#pragma once
// Mutual-TLS 1.3 settings shared by both daemons. Every peer presents a
// certificate signed by the consortium CA; a peer's identity is its
// certificate's subject common name, never anything it says.
#include <string>

namespace tapestry::common::net {

struct TlsSettings {
  std::string ca_file;    // consortium CA certificate (PEM)
  std::string cert_file;  // this process's certificate (PEM)
  std::string key_file;   // this process's private key (PEM)
  std::string crl_file;   // optional certificate revocation list (PEM)
};

}  // namespace tapestry::common::net
