# The two commands a fresh machine needs: `make run` and `make test`.
# Both install dependencies first (scripts/install-deps.sh is idempotent and fast when warm).

BUILD_DIR    ?= build
BUILD_TYPE   ?= RelWithDebInfo
FJORD_WERROR ?= OFF
JOBS         ?= $(shell nproc)
FUZZ_SECONDS ?= 20

# ccache hits across clones: paths under the checkout are hashed relative to it, and the working
# directory (recorded in debug info) is left out of the hash.
export CCACHE_BASEDIR  := $(CURDIR)
export CCACHE_NOHASHDIR := 1
export CCACHE_MAXSIZE ?= 5G

CMAKE_FLAGS = -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DFJORD_WERROR=$(FJORD_WERROR)

.PHONY: all deps build run test unit-check fuzz bench clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) $(CMAKE_FLAGS)

build: deps $(BUILD_DIR)/build.ninja
	cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	@bash scripts/run.sh $(BUILD_DIR)/fjord

test: build
	cd $(BUILD_DIR) && ctest -j 2 --output-on-failure --timeout 600
	$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(FUZZ_SECONDS)

# Fuzz targets need clang's libFuzzer, so they get their own build directory.
fuzz: deps
	cmake -S . -B build-fuzz -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DFJORD_FUZZ=ON -DFJORD_TESTS=OFF
	cmake --build build-fuzz -j $(JOBS) --target fuzz_targets
	bash fuzz/run.sh build-fuzz $(FUZZ_SECONDS)

bench: build
	bash bench/run.sh $(BUILD_DIR)

clean:
	rm -rf $(BUILD_DIR) build-fuzz
