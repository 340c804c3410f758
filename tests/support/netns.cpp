#include "netns.hpp"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "process.hpp"

namespace pickleway::test {

namespace {

using namespace std::chrono_literals;
using clock = std::chrono::steady_clock;

// Every namespace a fixture makes is named PREFIX-PID-N-SIDE.
const std::string prefix = "pickleway";
// The nftables table each namespace gets, with one input chain: a fault is
// the rule in it.
const std::string table = "inet pickleway_faults";

std::vector<std::string> nft(const std::string& ns, const std::string& commands) {
  return {"ip", "netns", "exec", ns, "nft", commands};
}

// Kills every process in namespace `ns` until none is left (or 5 s pass);
// false if some outlived that.
bool kill_all_in(const std::string& ns) {
  const auto end = clock::now() + 5s;
  for (;;) {
    const run_result listed = run_captured({"ip", "netns", "pids", ns});
    if (listed.exit_status != 0) return true;  // no such namespace
    std::istringstream words(listed.out);
    bool any = false;
    for (pid_t pid; words >> pid;) {
      if (pid == ::getpid()) continue;  // never the test itself
      ::kill(pid, SIGKILL);
      any = true;
    }
    if (!any) return true;
    if (clock::now() > end) return false;
    std::this_thread::sleep_for(10ms);  // a killed process takes a moment to leave
  }
}

// Removes namespace `ns` with all it holds; an absent one is not an error.
void remove_namespace(const std::string& ns) {
  if (!kill_all_in(ns)) std::fprintf(stderr, "netns: processes in %s outlived SIGKILL\n", ns.c_str());
  const run_result r = run_captured({"ip", "netns", "delete", ns});
  if (r.exit_status != 0 && r.out.find("No such file") == std::string::npos)
    std::fprintf(stderr, "netns: ip netns delete %s: %s\n", ns.c_str(), r.out.c_str());
}

// Removes what fixtures of test processes that died without their
// destructors left behind: namespaces of ours whose pid is not running, or
// is this process's own before it has made any.
void remove_stale_namespaces() {
  const run_result listed = run_captured({"ip", "netns", "list"});
  std::istringstream lines(listed.out);
  for (std::string line; std::getline(lines, line);) {
    const std::string ns = line.substr(0, line.find(' '));
    if (!ns.starts_with(prefix + "-")) continue;
    const std::string rest = ns.substr(prefix.size() + 1);
    const pid_t pid = static_cast<pid_t>(std::atol(rest.c_str()));
    if (pid <= 0) continue;
    if (pid == ::getpid() || (::kill(pid, 0) != 0 && errno == ESRCH)) remove_namespace(ns);
  }
}

// The n-th /30 of 10.0.0.0/8, wrapping: host 1 or 2 of it.
std::string address_in(unsigned n, int host) {
  n %= 1u << 22;
  return "10." + std::to_string(n >> 14) + "." + std::to_string((n >> 6) & 255) + "." +
         std::to_string((n & 63) * 4 + static_cast<unsigned>(host));
}

}  // namespace

two_hosts::two_hosts() {
  static std::once_flag swept;
  std::call_once(swept, remove_stale_namespaces);
  static std::atomic<unsigned> made{0};
  const unsigned n = made++;
  const std::string stem = prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(n);
  const unsigned subnet = static_cast<unsigned>(::getpid()) * 64 + n;
  a_ = {stem + "-a", address_in(subnet, 1), "veth-a"};
  b_ = {stem + "-b", address_in(subnet, 2), "veth-b"};
  try {
    run_checked({"ip", "netns", "add", a_.name});
    run_checked({"ip", "netns", "add", b_.name});
    // Made inside the namespaces, so no end ever shows in the machine's own.
    run_checked({"ip", "-n", a_.name, "link", "add", a_.device, "type", "veth", "peer", "name",
                 b_.device, "netns", b_.name});
    for (const host* h : {&a_, &b_}) {
      run_checked({"ip", "-n", h->name, "link", "set", "lo", "up"});
      run_checked({"ip", "-n", h->name, "address", "add", h->address + "/30", "dev", h->device});
      run_checked({"ip", "-n", h->name, "link", "set", h->device, "up"});
      run_checked(nft(h->name, "add table " + table +
                                   " { chain input { type filter hook input priority filter; policy accept; }; }"));
    }
    wait_for_carrier();
  } catch (const std::exception& e) {
    remove_namespace(a_.name);
    remove_namespace(b_.name);
    throw std::runtime_error(std::string("two_hosts cannot set up") +
                             (::geteuid() != 0 ? " (it needs root)" : "") + ": " + e.what());
  }
}

two_hosts::~two_hosts() {
  try {
    remove_namespace(a_.name);
    remove_namespace(b_.name);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "netns: removing %s and %s: %s\n", a_.name.c_str(), b_.name.c_str(), e.what());
  }
}

const std::string& two_hosts::name(side s) const { return at(s).name; }

const std::string& two_hosts::address(side s) const { return at(s).address; }

std::vector<std::string> two_hosts::in(side s, const std::vector<std::string>& argv) const {
  std::vector<std::string> words{"ip", "netns", "exec", at(s).name};
  words.insert(words.end(), argv.begin(), argv.end());
  return words;
}

void two_hosts::set_verdict(const std::string& verdict) {
  for (const side s : {side::a, side::b}) {
    const host& self = at(s);
    const host& peer = at(s == side::a ? side::b : side::a);
    std::string commands = "flush chain " + table + " input";
    // One nft run is one transaction: the old rule never lapses before the new one holds.
    if (!verdict.empty())
      commands += "; add rule " + table + " input ip saddr " + peer.address + " ip daddr " +
                  self.address + " " + verdict;
    run_checked(nft(self.name, commands));
  }
}

void two_hosts::set_links(const char* state) {
  for (const host* h : {&a_, &b_}) run_checked({"ip", "-n", h->name, "link", "set", h->device, state});
}

void two_hosts::wait_for_carrier() {
  const auto end = clock::now() + 5s;
  for (const host* h : {&a_, &b_}) {
    for (;;) {
      // LOWER_UP is the carrier itself; "state UP" follows it lazily.
      const std::string shown = run_checked({"ip", "-n", h->name, "-o", "link", "show", "dev", h->device});
      if (shown.find("LOWER_UP") != std::string::npos) break;
      if (clock::now() > end) throw std::runtime_error("netns: no carrier on " + h->device + " in " + h->name + ":\n" + shown);
      std::this_thread::sleep_for(5ms);
    }
  }
}

void two_hosts::link_down() {
  set_links("down");
  links_down_ = true;
}

void two_hosts::link_up() {
  set_links("up");
  links_down_ = false;
  wait_for_carrier();
}

// Dropped as they arrive, so that the sender's own stack sees nothing amiss
// (a drop on output would fail its sends with EPERM); ARP still passes, so
// no host-unreachable either.
void two_hosts::partition() { set_verdict("drop"); }

// Not the RSTs: the rule holds on both sides, and the other side's rule
// would drop the very RST this one sends (rejecting a RST only drops it).
void two_hosts::reject() { set_verdict("tcp flags & rst == 0 reject with tcp reset"); }

void two_hosts::reset_connections() {
  for (const side s : {side::a, side::b}) {
    const side other = s == side::a ? side::b : side::a;
    run_checked(in(s, {"ss", "--kill", "--tcp", "dst", address(other)}));
  }
}

void two_hosts::heal() {
  set_verdict("");
  if (links_down_) link_up();
}

}  // namespace pickleway::test
