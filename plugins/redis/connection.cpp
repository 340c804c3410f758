#include "connection.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <cstdint>

#include "bounded_replies.hpp"

namespace pickleway::redis {
namespace {

connection& owner(void* data) { return *static_cast<connection*>(data); }

}  // namespace

connection::connection(const server_address& at, watcher& loop, std::function<void(std::string)> lost)
    : loop_(loop), lost_(std::move(lost)) {
  // `lost` must not run inside hiredis (it frees the context after
  // telling us): an eventfd defers it to the loop.
  lost_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (lost_fd_ >= 0)
    lost_signal_ = loop_.watch_readable(lost_fd_, [this] {
      std::uint64_t count = 0;
      if (::read(lost_fd_, &count, sizeof count) > 0 && lost_) std::exchange(lost_, nullptr)(why_);
    });
  if (!lost_signal_) {
    why_ = "the event loop cannot watch a descriptor";
    return;
  }
  context_ = at.path.empty() ? redisAsyncConnect(at.host.c_str(), at.port)
                             : redisAsyncConnectUnix(at.path.c_str());
  if (!context_) {
    break_off("not enough memory for a connection");
    return;
  }
  if (context_->err) {
    const std::string why = context_->errstr;
    closing_ = true;
    redisAsyncFree(context_);
    context_ = nullptr;
    closing_ = false;
    break_off(why);
    return;
  }
  context_->data = this;
  context_->c.reader->fn = bounded_reply_functions();
  if (at.path.empty()) redisEnableKeepAlive(&context_->c);  // a dead peer is noticed, late
  watch_ = loop_.watch_socket(
      context_->c.fd, [this] { if (context_) redisAsyncHandleRead(context_); },
      [this] { if (context_) redisAsyncHandleWrite(context_); });
  if (!watch_) {
    closing_ = true;
    redisAsyncFree(context_);
    context_ = nullptr;
    closing_ = false;
    break_off("the event loop cannot watch the connection");
    return;
  }
  context_->ev.data = this;
  context_->ev.addRead = [](void* p) { owner(p).watch_->want_readable(true); };
  context_->ev.delRead = [](void* p) { owner(p).watch_->want_readable(false); };
  context_->ev.addWrite = [](void* p) { owner(p).watch_->want_writable(true); };
  context_->ev.delWrite = [](void* p) { owner(p).watch_->want_writable(false); };
  // hiredis frees the context after this: on our free, or its own when the
  // connection broke or never came up.
  context_->ev.cleanup = [](void* p) {
    connection& c = owner(p);
    const std::string why = c.context_ && c.context_->errstr[0] ? c.context_->errstr : "the connection closed";
    c.context_ = nullptr;
    c.watch_.reset();
    if (!c.closing_) c.break_off(why);
  };
  // hiredis connects on the first writable event; until a command is
  // queued nothing asks for it, so ask now.
  watch_->want_writable(true);
}

connection::~connection() {
  closing_ = true;
  if (context_) redisAsyncFree(context_);
  lost_signal_.reset();
  if (lost_fd_ >= 0) ::close(lost_fd_);
}

bool connection::command(const std::vector<std::string_view>& args, reply_handler handler) {
  if (!context_) return false;
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const std::string_view a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  auto* h = new reply_handler(std::move(handler));
  if (redisAsyncCommandArgv(context_, &connection::on_reply, h, static_cast<int>(argv.size()), argv.data(),
                            lengths.data()) != REDIS_OK) {
    delete h;
    return false;
  }
  return true;
}

void connection::on_reply(redisAsyncContext* context, void* reply, void* handler) {
  const std::unique_ptr<reply_handler> h(static_cast<reply_handler*>(handler));
  connection& c = owner(context->data);
  // nullptr: the connection is going; its owner hears through `lost`.
  if (!reply || c.closing_ || c.abandoned_) return;
  try {
    (*h)(*static_cast<const redisReply*>(reply));
  } catch (...) {  // out of memory: nothing may unwind through hiredis
    c.break_off("not enough memory for a reply");
  }
}

void connection::abandon(std::string why) {
  abandoned_ = true;
  break_off(std::move(why));
}

void connection::break_off(std::string why) {
  if (why_.empty()) why_ = std::move(why);
  const std::uint64_t one = 1;
  if (lost_fd_ >= 0) (void)::write(lost_fd_, &one, sizeof one);
}

}  // namespace pickleway::redis
