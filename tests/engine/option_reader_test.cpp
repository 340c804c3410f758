// The schema checks the plugin loader runs on every plugin (and the
// suite on the core's own schemas): a default must read as its option's
// type, so that the config reader can fill it in.
#include <doctest/doctest.h>

#include "config.hpp"
#include "option_reader.hpp"

using namespace pickleway;

TEST_CASE("the core's own schemas are sound") {
  CHECK_FALSE(schema_problem(root_schema()));
  CHECK_FALSE(schema_problem(session_schema()));
  CHECK_FALSE(schema_problem(endpoint_schema()));
}

TEST_CASE("a schema whose defaults do not read as their options is refused, with the reason") {
  static constexpr std::string_view colours[] = {"red", "blue"};
  const option_spec inner[] = {{.name = "ms", .type = option_type::integer, .default_value = "soon"}};
  struct bad {
    const char* what;
    std::vector<option_spec> schema;
    std::string reason;
  };
  const bad cases[] = {
      {"an integer", {{.name = "n", .type = option_type::integer, .default_value = "ten"}},
       "option 'n': its default 'ten' is not an integer"},
      {"a size", {{.name = "s", .type = option_type::size, .default_value = "64MB"}},
       "option 's': its default '64MB' is not a size (bytes, or a number with KiB, MiB or GiB)"},
      {"a choice", {{.name = "c", .type = option_type::choice, .choices = colours, .default_value = "green"}},
       "option 'c': its default 'green' is not one of the listed choices"},
      {"a boolean", {{.name = "b", .type = option_type::boolean, .default_value = "maybe"}},
       "option 'b': its default 'maybe' is not true or false"},
      {"inside a section", {{.name = "retry", .type = option_type::section, .section = inner}},
       "option 'retry': option 'ms': its default 'soon' is not an integer"},
      {"a section's own", {{.name = "retry", .type = option_type::section, .section = inner, .default_value = "{}"}},
       "option 'retry': a section has no default of its own"},
      {"a required option", {{.name = "r", .required = true, .default_value = "x"}},
       "option 'r' is required and has a default"},
      {"a name twice", {{.name = "x"}, {.name = "x"}}, "option 'x' is listed twice"},
      {"a choice without choices", {{.name = "c", .type = option_type::choice}}, "option 'c' has no choices"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.what);
    const auto problem = schema_problem(c.schema);
    REQUIRE(problem);
    CHECK(*problem == c.reason);
  }
}

TEST_CASE("defaults fill in what values made by hand lack, sections too") {
  static constexpr option_spec inner[] = {
      {.name = "ms", .type = option_type::integer, .default_value = "100"}};
  constexpr option_spec schema[] = {
      {.name = "size", .type = option_type::size, .default_value = "64KiB"},
      {.name = "on", .type = option_type::boolean, .default_value = "true"},
      {.name = "given", .type = option_type::string, .default_value = "unused"},
      {.name = "retry", .type = option_type::section, .section = inner},
  };
  option_values values;
  values.set_where("here");
  values.set("given", {std::string("written"), "there"});
  fill_defaults(values, schema);
  CHECK(values.get_integer("size") == 64 * 1024);
  CHECK(values.get_boolean("on") == true);
  CHECK(values.get_string("given") == "written");
  CHECK(values.has("given"));
  CHECK_FALSE(values.has("size"));  // a default is not written
  CHECK(values.where("size") == "here");
  REQUIRE(values.get_section("retry"));
  CHECK_FALSE(values.has("retry"));
  CHECK(values.get_section("retry")->get_integer("ms") == 100);
}
