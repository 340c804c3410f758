// The `spawn` transport: a child process per instance, its pickle channel
// on anonymous pipes (its stdin/stdout, or fds 3 and 4 with `channel: fds`).
#include <pickleway/plugin.hpp>

#include "child_process.hpp"

namespace {

using namespace pickleway;
using namespace pickleway::spawn;

constexpr std::string_view stderr_choices[] = {"inherit", "discard", "log"};
constexpr std::string_view channel_choices[] = {"stdio", "fds"};

constexpr option_spec spawn_options[] = {
    {"command", option_type::string_list, true, "the program to run and its arguments"},
    {.name = "env",
     .type = option_type::string_map,
     .help = "variables added to or overriding the inherited environment",
     .default_value = "{}"},
    {"cwd", option_type::string, false, "the child's working directory (default: pickleway's)"},
    {.name = "stderr",
     .type = option_type::choice,
     .help = "the child's standard error: inherit (pickleway's), discard, or log",
     .choices = stderr_choices,
     .default_value = "inherit"},
    {.name = "channel",
     .type = option_type::choice,
     .help = "stdio: pickles on the child's stdin/stdout; fds: on fds 3 (it reads) and 4 (it "
             "writes), PICKLEWAY_FDS=3,4, its stdout to the log",
     .choices = channel_choices,
     .default_value = "stdio"},
};

class spawn_opener final : public opener {
 public:
  spawn_opener(std::shared_ptr<const child_options> options, log_sink* log, watcher* loop)
      : options_(std::move(options)), log_(log), loop_(loop) {}

  // Starting a child does not wait for anything: one step.
  open_step step(bool) noexcept override {
    return guarded([](std::string_view why) { return open_step::fail(std::string(why)); }, [&]() -> open_step {
      std::string error;
      auto stream = start_child(*options_, log_, loop_, error);
      return stream ? open_step::ready(std::move(stream)) : open_step::fail(std::move(error));
    });
  }

 private:
  std::shared_ptr<const child_options> options_;
  log_sink* log_;
  watcher* loop_;
};

class spawn_transport final : public transport {
 public:
  explicit spawn_transport(child_options options)
      : options_(std::make_shared<const child_options>(std::move(options))) {}

  std::unique_ptr<opener> open(const open_context& context, std::string& error) noexcept override {
    return guarded([&](std::string_view why) { error = why; return std::unique_ptr<opener>(); }, [&] {
      return std::unique_ptr<opener>(std::make_unique<spawn_opener>(options_, context.log, context.watch));
    });
  }

  // "spawn python3 producer.py", then the options that are not defaults.
  std::string describe() const noexcept override {
    return guarded([](std::string_view) { return std::string(); }, [&]() -> std::string {
      std::string text = "spawn " + command_line(options_->command);
      std::vector<std::string> notes;
      if (options_->channel == channel_mode::fds) notes.emplace_back("channel fds");
      if (options_->stderr_to == stderr_mode::discard) notes.emplace_back("stderr discard");
      if (options_->stderr_to == stderr_mode::log) notes.emplace_back("stderr log");
      if (!options_->cwd.empty()) notes.push_back("cwd " + options_->cwd);
      for (std::size_t i = 0; i < notes.size(); ++i) text += (i == 0 ? " (" : ", ") + notes[i];
      if (!notes.empty()) text += ')';
      return text;
    });
  }

 private:
  std::shared_ptr<const child_options> options_;
};

std::unique_ptr<transport> build(const option_values& values, option_error& error) {
  child_options o;
  o.command = *values.get_list("command");  // required
  if (o.command.empty() || o.command.front().empty()) {
    error = {"command", "spawn: `command` needs at least the program to run"};
    return nullptr;
  }
  const std::string err = *values.get_string("stderr");
  o.stderr_to = err == "log"       ? stderr_mode::log
                : err == "discard" ? stderr_mode::discard
                                   : stderr_mode::inherit;
  o.channel = *values.get_string("channel") == "fds" ? channel_mode::fds : channel_mode::stdio;
  o.env = *values.get_map("env");
  for (const auto& [name, value] : o.env) {
    if (name.empty() || name.find('=') != std::string::npos) {
      error = {"env", "spawn: '" + name + "' cannot be an environment variable's name"};
      return nullptr;
    }
  }
  if (o.channel == channel_mode::fds && o.env.count("PICKLEWAY_FDS")) {
    error = {"env", "spawn: PICKLEWAY_FDS is set by `channel: fds`; leave it out of `env`"};
    return nullptr;
  }
  o.cwd = values.get_string("cwd").value_or("");
  if (values.has("cwd") && o.cwd.empty()) {
    error = {"cwd", "spawn: `cwd` is empty; leave it out to keep pickleway's own"};
    return nullptr;
  }
  return std::make_unique<spawn_transport>(std::move(o));
}

}  // namespace

PICKLEWAY_TRANSPORT_PLUGIN("spawn", "1.0.0", "a child process on anonymous pipes", spawn_options,
                           guarded_factory<build>)
