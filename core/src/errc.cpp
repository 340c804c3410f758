#include "pickleway/errc.hpp"

#include <string>

namespace pickleway {
namespace {

class category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "pickleway"; }

  std::string message(int value) const override {
    return std::string(errc_message(static_cast<errc>(value)));
  }
};

}  // namespace

const std::error_category& pickleway_category() noexcept {
  static const category instance;
  return instance;
}

std::string_view errc_message(errc e) noexcept {
  switch (e) {
    case errc::ok: return "success";
#define PICKLEWAY_MESSAGE(name, message) \
  case errc::name: return message;
    PICKLEWAY_ERRORS(PICKLEWAY_MESSAGE)
    PICKLEWAY_PATH_ERRORS(PICKLEWAY_MESSAGE)
#undef PICKLEWAY_MESSAGE
  }
  return "unknown pickleway error";
}

std::string_view errc_name(errc e) noexcept {
  switch (e) {
    case errc::ok: return "ok";
#define PICKLEWAY_NAME(name, message) \
  case errc::name: return #name;
    PICKLEWAY_ERRORS(PICKLEWAY_NAME)
    PICKLEWAY_PATH_ERRORS(PICKLEWAY_NAME)
#undef PICKLEWAY_NAME
  }
  return "unknown";
}

}  // namespace pickleway
