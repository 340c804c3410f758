// Two hosts on one machine for tests that break the network between them:
// two network namespaces joined by a veth pair, with faults to switch on and
// off. Needs root (ip netns and nft); a failure to set up throws, naming the
// command and what it printed, so a run without root fails and says why.
//
//   two_hosts net;
//   gateway far(config, {}, net.in(side::b));  // listens on net.address(side::b)
//   net.partition();
//   ... the link must notice, or ride it out ...
//   net.heal();
//
// Each fixture's namespaces are its own, named from the pid and a counter,
// so fixtures in one process and in parallel tests never meet; its
// addresses, a 10.x.y.0/30 from the same two numbers, exist only inside
// them. Not thread-safe: one thread drives a fixture.
#pragma once

#include <string>
#include <vector>

namespace pickleway::test {

enum class side { a, b };

class two_hosts {
 public:
  // Both namespaces, `lo` and the veth ends up and addressed; returns once
  // both ends have carrier.
  two_hosts();
  // Kills whatever still runs in either namespace, then deletes both (and
  // so the veth pair and the rules). Never throws.
  ~two_hosts();
  two_hosts(const two_hosts&) = delete;
  two_hosts& operator=(const two_hosts&) = delete;

  const std::string& name(side s) const;     // the namespace, as `ip netns` names it
  const std::string& address(side s) const;  // its IPv4 address on the veth
  // `argv` run inside side s: {"ip", "netns", "exec", name(s), argv...}.
  // With no argv, the prefix alone (for gateway's `prefix`).
  std::vector<std::string> in(side s, const std::vector<std::string>& argv = {}) const;

  // The faults. partition() and reject() each replace the other; the links
  // are apart from both. heal() undoes all of them.
  //
  // Both veth ends down: each side loses its route to the other, so a new
  // connect fails at once with ENETUNREACH; an established connection's
  // data waits in its socket and goes once the link is up again.
  void link_down();
  // Both ends up again; returns once both have carrier.
  void link_up();
  // Each side drops every IPv4 packet from the other as it arrives, so
  // neither sender hears a thing: no RST, no ICMP; connects time out and
  // established connections stall (and survive, if healed before their
  // own timeouts).
  void partition();
  // Each side answers every TCP segment from the other, but a RST, with a
  // RST: a connect is refused (ECONNREFUSED) and an established connection
  // is reset (ECONNRESET) when a segment of it arrives, until heal(). Other
  // protocols pass.
  void reject();
  // Aborts every TCP connection between the two addresses once, now, with
  // `ss --kill` (a kernel with CONFIG_INET_DIAG_DESTROY, as distributions
  // build it); new ones are not affected. Side a's ends go first and fail
  // with ECONNABORTED; the RST each sends resets its end in side b
  // (ECONNRESET); then side b's are aborted too, should any be left.
  void reset_connections();
  // No rules, both links up.
  void heal();

 private:
  struct host {
    std::string name, address, device;
  };
  const host& at(side s) const { return s == side::a ? a_ : b_; }
  // Each side's one rule: `verdict` for IPv4 from the other side; none if empty.
  void set_verdict(const std::string& verdict);
  void set_links(const char* state);
  void wait_for_carrier();

  host a_, b_;
  bool links_down_ = false;
};

}  // namespace pickleway::test
