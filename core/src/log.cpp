#include "log.hpp"

#include <unistd.h>

#include <mutex>
#include <string>

namespace pickleway {

void log_line(std::string_view line) {
  std::string text = "pickleway: ";
  text += line;
  text += '\n';
  // One write per line, so lines from other processes sharing stderr do not
  // interleave within it.
  static std::mutex writing;
  const std::lock_guard<std::mutex> lock(writing);
  for (std::size_t done = 0; done < text.size();) {
    const ssize_t n = ::write(STDERR_FILENO, text.data() + done, text.size() - done);
    if (n <= 0) return;
    done += static_cast<std::size_t>(n);
  }
}

}  // namespace pickleway
