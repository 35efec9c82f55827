# fbnet build. `make` builds build/fbnet; `make test` builds and runs every
# test; `make demo` installs what is missing, builds and runs the main job.
# SAN=1 builds everything with AddressSanitizer + UBSan into build-san/.

CC      ?= cc
SAN     ?= 0
ifeq ($(SAN),1)
BUILD   ?= build-san
OPT     := -O1 -g -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer \
           -fno-sanitize-recover=undefined,float-cast-overflow
else
BUILD   ?= build
OPT     := -O3 -g
endif

CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) -march=x86-64-v3 -fopenmp -Wall -Wextra \
           -Iinclude -Isrc -MMD -MP
LDLIBS  += -ldnnl -lcjson -lpng -ljpeg -lz -lm
LDFLAGS += -fopenmp $(if $(filter 1,$(SAN)),-fsanitize=address$(comma)undefined,)
comma := ,

LIB_SRC  := $(shell find src -name '*.c' | sort)
ARCHS    := $(sort $(wildcard archs/*.json))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/builtin_archs_data.o
CLI_SRC  := $(shell find tools -name '*.c' | sort)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_SRC := $(sort $(wildcard tests/test_*.c))
TEST_BIN := $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
# parser fuzz harnesses (tests/fuzz): replayed over their corpus and regression
# inputs by `make test`; `make fuzz` runs them under libFuzzer (clang)
FUZZ_NAMES := $(patsubst tests/fuzz/fuzz_%.c,%,$(filter-out tests/fuzz/fuzz_util.c,$(wildcard tests/fuzz/fuzz_*.c)))
FUZZ_REPLAY := $(FUZZ_NAMES:%=$(BUILD)/fuzz/replay_%)
FUZZ_SECONDS ?= 30

.PHONY: all test demo deps clean bench fuzz
all: deps-check $(BUILD)/fbnet

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/gen/builtin_archs_data.c: $(ARCHS) scripts/embed_archs.sh
	@mkdir -p $(dir $@)
	bash scripts/embed_archs.sh $@ $(ARCHS)

$(BUILD)/gen/builtin_archs_data.o: $(BUILD)/gen/builtin_archs_data.c
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libfbnet.a: $(LIB_OBJ)
	ar rcs $@ $^

$(BUILD)/fbnet: $(CLI_OBJ) $(BUILD)/libfbnet.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(TEST_BIN): $(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/tests/check.o $(BUILD)/tests/fixture_io.o \
              $(BUILD)/libfbnet.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(BUILD)/fuzz/replay_%: tests/fuzz/fuzz_%.c tests/fuzz/fuzz_util.c tests/fuzz/driver.c \
                        $(BUILD)/libfbnet.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/fuzz $(LDFLAGS) $^ -o $@ $(LDLIBS)

test: deps-check $(BUILD)/fbnet $(TEST_BIN) $(FUZZ_REPLAY)
	@BUILD=$(BUILD) bash scripts/run_tests.sh $(TEST_BIN)

# libFuzzer: the library and each harness built by clang with ASan + UBSan
# into build-fuzz/, each run for FUZZ_SECONDS on a copy of its corpus; a
# finding fails the target and is left in build-fuzz/findings/NAME/ (copy it
# to tests/fuzz/regress/NAME/ once fixed)
fuzz: deps-check
	bash scripts/fuzz.sh $(FUZZ_SECONDS) $(FUZZ_NAMES)

deps:
	bash scripts/install_deps.sh

demo: deps
	$(MAKE) all
	bash scripts/demo.sh

bench: $(BUILD)/fbnet
	@echo "see bench/README.md"

clean:
	rm -rf build build-san build-fuzz

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(TEST_BIN:=.d)

# A clear message instead of a compiler error when a package is missing.
.PHONY: deps-check
deps-check:
	@test -f /usr/include/dnnl.h -a -f /usr/include/cjson/cJSON.h -a -f /usr/include/png.h \
	  -a -f /usr/include/jpeglib.h || \
	  { echo "missing build dependencies: run 'make deps' (scripts/install_deps.sh)"; exit 1; }
