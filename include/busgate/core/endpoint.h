// Endpoint: a door into the bus. The default endpoint enforces only the bus policy (with the privileged and
// same-user shortcuts); a custom endpoint (a sandbox, a container) carries its own PolicyDatabase that is
// enforced for everyone who connected through it, privileged or not, and hides the names it does not let
// its connections SEE.
// Invariant: the default endpoint exists for the bus's whole life and has id 0.
#pragma once

#include <string>

#include "busgate/core/policy_database.h"
#include "busgate/core/types.h"

namespace busgate::core {

class Endpoint {
  public:
    Endpoint(EndpointId id, std::string name) : id_(id), name_(std::move(name)) {}

    EndpointId id() const { return id_; }
    const std::string& name() const { return name_; }
    bool is_default() const { return id_ == default_endpoint; }
    const PolicyDatabase& policy() const { return policy_; }
    PolicyDatabase& policy() { return policy_; }

  private:
    EndpointId id_;
    std::string name_;
    PolicyDatabase policy_;
};

}  // namespace busgate::core
