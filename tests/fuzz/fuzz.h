/* libFuzzer harnesses of fbnet's parsers (tests/fuzz/README.md). Each
 * fuzz_<name>.c defines LLVMFuzzerTestOneInput; built with clang
 * -fsanitize=fuzzer it is a fuzzer (`make fuzz`), built with driver.c it
 * replays the files given on the command line (the regression inputs in
 * tests/fuzz/regress/<name>/, run by `make test`). */
#ifndef FB_TESTS_FUZZ_H
#define FB_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Writes the input to a file of this process (a fixed name with the given
 * suffix under $TMPDIR) and returns its path (static storage). */
const char *fuzz_file(const uint8_t *data, size_t size, const char *suffix);
/* The input as a NUL-terminated string (malloc'd). */
char *fuzz_text(const uint8_t *data, size_t size);

#endif
