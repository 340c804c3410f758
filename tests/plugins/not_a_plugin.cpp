// A shared library that is no pickleway plugin: skipped with a warning.
extern "C" __attribute__((visibility("default"))) int not_a_plugin() { return 42; }
