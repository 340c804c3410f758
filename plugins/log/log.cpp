// The `log` filter: one record per message, both directions, appended to a
// file or standard error by a writer thread. It only observes: every message
// passes on unchanged, including one it cannot read as a pickle (its record
// says why). See README.md beside this file for the formats.
#include <unistd.h>

#include <filesystem>
#include <mutex>
#include <new>

#include <pickleway/plugin.hpp>

#include "inspect.hpp"
#include "record.hpp"
#include "writer.hpp"

namespace {

using namespace pickleway;
namespace lg = pickleway::log;

// Messages up to this size are copied for the writer thread, which inspects
// them; a larger one is inspected on the event loop, where the walk skips
// its payloads, rather than copied (and `dis` copies every message anyway).
constexpr std::size_t copy_limit = std::size_t{64} << 10;

constexpr std::string_view format_choices[] = {"text", "jsonl"};

constexpr option_spec log_options[] = {
    {"path", option_type::string, true,
     "file the records are appended to (created if missing); - for standard error"},
    {.name = "format",
     .type = option_type::choice,
     .help = "text: a line per message; jsonl: a JSON object per line",
     .choices = format_choices,
     .default_value = "text"},
    {.name = "dis",
     .type = option_type::boolean,
     .help = "add each message's disassembly, as pickletools.dis",
     .default_value = "false"},
    {.name = "hex",
     .type = option_type::boolean,
     .help = "add a hex dump of each message",
     .default_value = "false"},
    {.name = "hex_limit",
     .type = option_type::size,
     .help = "bytes of each message the hex dump shows",
     .default_value = "256"},
    {.name = "max_record",
     .type = option_type::size,
     .help = "a record longer than this is cut, ending in \u2026truncated (at least 1KiB)",
     .default_value = "1MiB"},
    {.name = "queue",
     .type = option_type::integer,
     .help = "records waiting for the writer thread; more are dropped and counted",
     .default_value = "1024"},
};

void to_stderr(const std::string& text) {
  const std::string line = "pickleway: " + text + "\n";
  [[maybe_unused]] const auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

// One instance's log: makes a record of each message on the event loop
// thread (the time, the sequence, the size and a copy of the bytes) and
// hands it to the writer, dropping it when the writer's queue is full.
class log_filter final : public filter {
 public:
  log_filter(std::shared_ptr<lg::writer> w, const lg::format_options& format,
             const open_context& context)
      : writer_(std::move(w)),
        dis_(format.dis),
        hex_limit_(format.hex ? format.hex_limit : 0),
        from_(std::make_shared<const lg::origin>(lg::origin{context.session, context.instance})),
        sink_(context.log) {}

  // Says how many records were dropped, in the log and in pickleway's log
  // (the instance's sink is still alive while its filters are destroyed),
  // and hands the writer the origin its records point to.
  ~log_filter() override {
    lg::record r;
    r.what = dropped_ == 0 ? lg::record::kind::retired : lg::record::kind::dropped;
    r.time = std::chrono::system_clock::now();
    r.from = from_.get();
    r.keep = from_;
    r.count = dropped_;
    writer_->push_always(std::move(r));
    if (dropped_ == 0) return;
    const std::string line = "log: " + std::to_string(dropped_) +
                             (dropped_ == 1 ? " record" : " records") +
                             " dropped: the log's queue was full";
    if (sink_) {
      sink_->line(line);
    } else {
      to_stderr("session " + from_->session + "#" + std::to_string(from_->instance) + ": " + line);
    }
  }

  // The log only observes: a record it cannot get the memory for is
  // dropped and counted, and the message goes on.
  filter_result on_message(direction d, message& m, std::string&) noexcept override {
    return guarded(
        [&](std::string_view) {
          ++dropped_;
          return filter_result::pass;
        },
        [&] {
          log_message(d, m);
          return filter_result::pass;
        });
  }

 private:
  void log_message(direction d, const message& m) {
    const bytes_view bytes = m.bytes();
    lg::record r;
    r.time = std::chrono::system_clock::now();
    r.from = from_.get();
    r.dir = d;
    r.sequence = m.sequence();
    r.size = bytes.size();
    bytes_view kept = bytes;
    if (dis_ || bytes.size() <= copy_limit) {
      r.inspect_kept = true;
    } else {
      r.facts = std::make_unique<lg::message_facts>();
      inspector_.inspect(bytes, *r.facts);
      kept = bytes.first(std::min(bytes.size(), hex_limit_));
    }
    if (!writer_->push(std::move(r), kept)) ++dropped_;
  }

  std::shared_ptr<lg::writer> writer_;
  const bool dis_;
  const std::size_t hex_limit_;  // bytes of a large message the record keeps
  std::shared_ptr<const lg::origin> from_;
  log_sink* sink_;
  lg::inspector inspector_;  // for the messages over copy_limit
  std::uint64_t dropped_ = 0;
};

// One configured log: its instances share one writer thread and one file.
// The thread starts with the first instance, so `pickleway check` neither
// starts it nor creates the file.
class log_factory final : public filter_factory {
 public:
  log_factory(lg::writer_options options, std::string written_path)
      : options_(std::move(options)), written_path_(std::move(written_path)) {}

  std::unique_ptr<filter> make(const open_context& context, std::string& error) noexcept override {
    return guarded([&](std::string_view why) { error = why; return std::unique_ptr<filter>(); }, [&]() -> std::unique_ptr<filter> {
      std::shared_ptr<lg::writer> writer;
      {
        // Instances on two loops may be made at once.
        const std::lock_guard<std::mutex> lock(starting_);
        if (!writer_) writer_ = std::make_shared<lg::writer>(options_);
        writer = writer_;
      }
      return std::make_unique<log_filter>(std::move(writer), options_.format, context);
    });
  }

  std::string describe() const noexcept override {
    return guarded([](std::string_view) { return std::string(); }, [&]() -> std::string {
      const auto& f = options_.format;
      std::string text = "log path=" + written_path_ +
                         " format=" + (f.form == lg::format::jsonl ? "jsonl" : "text");
      if (f.dis) text += " dis";
      if (f.hex) text += " hex hex_limit=" + std::to_string(f.hex_limit);
      text += " max_record=" + std::to_string(f.max_record);
      return text + " queue=" + std::to_string(options_.max_records);
    });
  }

 private:
  const lg::writer_options options_;
  const std::string written_path_;
  std::mutex starting_;
  std::shared_ptr<lg::writer> writer_;  // the instances hold it too: it outlives the last
};

// Refuses a path the log could not be written to, without creating it.
std::string path_problem(const std::filesystem::path& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (fs::exists(status)) {
    if (fs::is_directory(status)) return path.string() + " is a directory";
    if (::access(path.c_str(), W_OK) != 0) return "cannot write " + path.string() + ": " + last_error().message();
    return "";
  }
  const fs::path dir = path.parent_path();
  if (!fs::is_directory(dir, ec)) return "no directory " + dir.string();
  if (::access(dir.c_str(), W_OK | X_OK) != 0)
    return "cannot create a file in " + dir.string() + ": " + last_error().message();
  return "";
}

std::unique_ptr<filter_factory> build(const option_values& values, option_error& error) {
  lg::writer_options o;
  const std::string path = *values.get_string("path");  // required
  if (path.empty()) {
    error = {"path", "log: path must name a file, or be - for standard error"};
    return nullptr;
  }
  o.path = path;
  if (path != "-") {
    // Relative to the working directory pickleway was started in.
    std::error_code ec;
    const auto absolute = std::filesystem::absolute(path, ec);
    if (ec) {
      error = {"path", "log: " + path + ": " + ec.message()};
      return nullptr;
    }
    if (const std::string problem = path_problem(absolute); !problem.empty()) {
      error = {"path", "log: " + problem};
      return nullptr;
    }
    o.path = absolute.string();
  }
  o.format.form = *values.get_string("format") == "jsonl" ? lg::format::jsonl : lg::format::text;
  o.format.dis = *values.get_boolean("dis");
  o.format.hex = *values.get_boolean("hex");
  const std::int64_t hex_limit = *values.get_integer("hex_limit");
  if (hex_limit < 1) {
    error = {"hex_limit", "log: hex_limit must be at least 1 byte"};
    return nullptr;
  }
  o.format.hex_limit = static_cast<std::size_t>(hex_limit);
  const std::int64_t max_record = *values.get_integer("max_record");
  if (max_record < static_cast<std::int64_t>(lg::smallest_max_record)) {
    error = {"max_record", "log: max_record must be at least " +
                               std::to_string(lg::smallest_max_record) + " bytes"};
    return nullptr;
  }
  o.format.max_record = static_cast<std::size_t>(max_record);
  const std::int64_t queue = *values.get_integer("queue");
  if (queue < 1) {
    error = {"queue", "log: queue must hold at least 1 record"};
    return nullptr;
  }
  o.max_records = static_cast<std::size_t>(queue);
  return std::make_unique<log_factory>(std::move(o), path);
}

}  // namespace

PICKLEWAY_FILTER_PLUGIN("log", "1.0.0",
                        "one record per message (time, session, direction, size, protocol, "
                        "type, globals) to a file, written by a thread of its own",
                        log_options, guarded_factory<build>)
