// The links a listening session's instances hold, by id, so that a
// connection that resumes one is handed to it (docs/framing.md).
#pragma once

#include <map>
#include <memory>

#include "engine/link_protocol.hpp"

namespace pickleway {

class link;

class link_registry {
 public:
  void add(const link_wire::link_id& id, std::weak_ptr<link> l) { links_[id] = std::move(l); }
  void remove(const link_wire::link_id& id) { links_.erase(id); }
  // The live link of that id, or null.
  std::shared_ptr<link> find(const link_wire::link_id& id) const {
    const auto it = links_.find(id);
    return it == links_.end() ? nullptr : it->second.lock();
  }

 private:
  std::map<link_wire::link_id, std::weak_ptr<link>> links_;
};

}  // namespace pickleway
