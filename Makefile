# roster: the two commands a newcomer needs (`make run`, `make test`) and the
# rest of the developer loop. Each target installs missing Debian packages
# through scripts/deps first, so a fresh Debian 12 machine needs nothing else.
.PHONY: all build run test test-unit test-api test-asan test-fuzz bench clean deps

BUILD ?= build
ASAN_BUILD ?= build-asan
FUZZ_BUILD ?= build-fuzz
LISTEN ?= 127.0.0.1:8080
DB ?= sqlite:var/roster.db

all: build

$(BUILD)/build.ninja:
	@scripts/deps build
	meson setup $(BUILD) --buildtype=debugoptimized

build: $(BUILD)/build.ninja
	@scripts/deps build
	ninja -C $(BUILD)

run: build
	$(BUILD)/roster serve --listen $(LISTEN) --db $(DB)

$(ASAN_BUILD)/build.ninja:
	@scripts/deps test
	meson setup $(ASAN_BUILD) --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

$(FUZZ_BUILD)/build.ninja:
	@scripts/deps test
	CC=clang meson setup $(FUZZ_BUILD) --buildtype=debug -Dfuzz=true -Db_lundef=false

# Every suite; the last line sums them: "N passed, N failed".
test: build $(ASAN_BUILD)/build.ninja $(FUZZ_BUILD)/build.ninja
	@scripts/deps test
	ninja -C $(ASAN_BUILD)
	ninja -C $(FUZZ_BUILD)
	@/usr/bin/python3 tests/run_all.py --build $(BUILD) --asan-build $(ASAN_BUILD) --fuzz-build $(FUZZ_BUILD)

test-unit: build
	@/usr/bin/python3 tests/run_all.py --build $(BUILD) --only unit

test-api: build
	@/usr/bin/python3 tests/run_all.py --build $(BUILD) --only api

# BENCH_1M=0 skips the one-million-user run (its first run makes the data:
# about 15 minutes; later runs reuse it). bench/access.sh is the access check
# through the API and in-process (bench_access; ~20 s). bench/login.sh is the sign-in run
# (raw argon2id rate vs sign-ins/s, GET latency under sign-in load; ~1 minute).
BENCH_1M ?= 1
bench: build
	@scripts/deps bench
	bash bench/run.sh $(BUILD)/roster
	bash bench/access.sh $(BUILD)/roster
	bash bench/login.sh $(BUILD)/roster $(BUILD)/bench/bench_hash
	@if [ "$(BENCH_1M)" != 0 ]; then bash bench/users_1m.sh $(BUILD)/roster; fi

deps:
	scripts/deps bench

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
